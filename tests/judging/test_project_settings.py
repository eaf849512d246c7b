"""Project settings live in the database, so every reviewer's process sees the same."""
import pytest

from review.judging import project_settings
from review.judging.project_settings import SettingError
from review.store import connect, transaction


def test_defaults_then_stored_values_seen_by_another_connection(db, tmp_path):
    assert project_settings.all_values(db) == {"second_opinion": "off", "log_origin": ""}
    with transaction(db):
        project_settings.write(db, "second_opinion", "all", by="eda")
    other = connect(tmp_path / "review.db")
    assert project_settings.get(other, "second_opinion") == "all"
    row = other["project_settings"].get("second_opinion")
    assert row["updated_by"] == "eda" and row["updated_at"]


def test_unknown_keys_and_values_name_the_allowed_ones(db):
    with pytest.raises(SettingError, match="unknown setting 'colour': the settings are second_opinion, log_origin"):
        project_settings.get(db, "colour")
    with pytest.raises(SettingError, match="second_opinion can be off, verified, all, not 'twice'"):
        project_settings.check("second_opinion", "twice")
