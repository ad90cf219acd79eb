"""Partitions are planned on internal keys only: a patient key that is a personal identity number is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from decommission.errors import MappingError
from decommission.mapping.identity import make_personnummer
from decommission.plan.mapping_spec import load_spec
from decommission.stages import _refuse_personal_patient_key
from tests.submit_task import REPO

SPEC = load_spec(REPO / "include" / "mappings" / "vas.yaml")


class TestPatientKey:
    def test_internal_keys_pass(self) -> None:
        _refuse_personal_patient_key(SPEC, list(range(1, 5000)))

    def test_personnummer_as_the_patient_key_is_refused_naming_no_value(self) -> None:
        keys = [int(make_personnummer(dt.date(1950, 1, 1) + dt.timedelta(days=d), 20 + d % 70)) for d in range(300)]
        with pytest.raises(MappingError, match="holds personal identity numbers") as caught:
            _refuse_personal_patient_key(SPEC, keys)
        message = str(caught.value)
        assert "map the table's internal row key as patient_key" in message
        assert not any(str(k) in message or str(k)[2:] in message for k in keys)
