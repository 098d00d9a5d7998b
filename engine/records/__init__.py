"""Consultation records (面接相談記録): templates, drafting (LLM or extractive), checks,
workflow (下書き → 提出済 → 承認済 | 差戻し), export. See the module docstrings."""
