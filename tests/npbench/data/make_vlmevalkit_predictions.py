"""Writes the VLMEvalKit prediction fixtures of tests/npbench/test_vlmevalkit.py with the two
writers a VLMEvalKit user meets: xlsxwriter (what VLMEvalKit's ``dump`` uses through pandas)
and openpyxl (pandas' default). Not part of the test run; neither package is a dependency:

    python -m venv /tmp/xl && /tmp/xl/bin/pip install xlsxwriter openpyxl
    /tmp/xl/bin/python tests/npbench/data/make_vlmevalkit_predictions.py
"""

from pathlib import Path

import openpyxl
import xlsxwriter

HERE = Path(__file__).parent
HEADER = ["index", "question", "answer", "category", "prediction"]
# The rows of test_vlmevalkit.PREDICTIONS: index, prediction (None: an empty cell).
ROWS = [
    (0, "I think the answer is\nAnswer: [1, 2, 4]"),
    (1, "Answer: [0, 1, 2, 3]"),
    (2, "no idea"),
    (3, "Answer: [[0], [1, 2, 3, 4, 5]]"),
    (4, "Answer: [[0, 0], [1, 2, 3, 4]]"),
    (5, "**Answer:** [0, 2]"),
    (6, None),
]


def with_xlsxwriter(path: Path) -> None:
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    sheet = book.add_worksheet("Sheet1")
    bold = book.add_format({"bold": True, "border": 1})
    for c, name in enumerate(HEADER):
        sheet.write_string(0, c, name, bold)
    for r, (index, prediction) in enumerate(ROWS, 1):
        sheet.write_number(r, 0, index)
        sheet.write_string(r, 1, f"question {index}")
        sheet.write_string(r, 2, "[0]")
        sheet.write_string(r, 3, "covering")
        if prediction is not None:
            sheet.write_string(r, 4, prediction)
    book.close()


def with_openpyxl(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for index, prediction in ROWS:
        sheet.append([index, f"question {index}", "[0]", "covering", prediction])
    book.save(path)


if __name__ == "__main__":
    with_xlsxwriter(HERE / "predictions_xlsxwriter.xlsx")
    with_openpyxl(HERE / "predictions_openpyxl.xlsx")
