"""The report stage: report.html (`html`, with the postprocess steps' tables from `steps` and the\nutility section from `utility`), dataset_card.md (`card`), and the runner that writes both.\n"""
