"""nodeutils.formatting: the training table's rows and plain-text tables."""

from helpers import TABLE_ROW

from nodeutils.formatting import format_row, format_table


def test_row_has_the_tutorial_layout():
    row = format_row(3, 9, 0.06123, 84.81481, 84.0)
    assert row == "[3/9]\tTime 0.0612s\tTraining Accuracy: 84.81%\tTest Accuracy: 84.00%"
    assert TABLE_ROW.match(row)


def test_table_formatting():
    table = format_table(["a", "bb"], [[1, 2], [333, 4]]).splitlines()
    assert table[0] == "a    bb" and table[1] == "---  --" and table[3] == "333  4"
