"""Curve-mirror (道路反射鏡 / カーブミラー) health diagnosis from photos, with an inspection ledger.

Public API (Qt-free; import the submodule you need):

* ``diagnose.diagnose(path, table=None, model="default") -> MirrorInspection`` — one photo;
  ``MirrorInspection.to_json()`` is the CLI's JSON (``grade``, ``findings``, ``quality`` + extras).
* ``ledger.import_folder(ctx, folder, user=, cancel=None) -> Iterator[ImportEvent]`` (progress,
  resumable, duplicates by SHA-256), ``ledger.list_inspections``, ``get_inspection``, ``list_mirrors``,
  ``history(ctx, code)``, ``confirm(ctx, inspection_id, grade, user=, reason=)``,
  ``assign_mirror``, ``upsert_mirror``, ``export_csv``, ``export_xlsx``.
* ``overlay.render(inspection)`` / ``overlay.render_inspection(ledger_row)`` -> PIL image.
* ``grading.load_table(grading.table_path(ctx.data_dir))`` — the office-editable rule table.
* ``train.train_synthetic()`` / ``train.train_from_ledger(ctx)`` (needs torch; development/office PC).
"""
