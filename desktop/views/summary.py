"""文書要約 on screen: the points of a :class:`engine.manuals.summarize.Summary`, each with the
page(s) it rests on, a point that failed the content-support check marked 要確認, and the label
saying whether the AI wrote it or the sentences were taken as they are."""
from __future__ import annotations

import html

from .. import strings as S


def summary_html(s) -> str:
    rows = []
    for p in s.points:
        pages = S.LIST_SEP.join(S.PAGE_N.format(n=n) for n in p.pages) if p.pages else S.SUMMARY_NO_PAGE
        flag = (f"　<span style='color:#c62828'><b>{S.NEEDS_CHECK}</b>（{html.escape(S.summary_flags(p.flags))}）</span>"
                if p.flags else "")
        rows.append(f"<li>{html.escape(p.text)}　<span style='color:#555'>（{pages}）</span>{flag}</li>")
    ocr = (f"<p style='color:#555'>{S.SUMMARY_OCR_PAGES.format(pages='、'.join(map(str, s.ocr_pages)))}</p>"
           if s.ocr_pages else "")
    return (f"<p><b>{html.escape(s.label)}</b><br>{html.escape(s.title)}</p><ul>{''.join(rows)}</ul>{ocr}")
