"""Run the E-ARK reference validator (eark-validator 1.1.3) offline on one package; print its JSON report.

Run with the interpreter of its own virtual environment (``make eark-venv``), never the product's:
it pins lxml 5.1.0. At import it downloads four DILCIS vocabularies; the same files ship inside
the package (``eark_validator/ipxml/resources/vocabs``), so ``urlopen`` is pointed at them and
every socket refuses to connect. Usage: ``.venv-eark/bin/python tests/eark/eark_offline.py PATH``.
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from importlib.resources import files
from pathlib import Path


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("eark_offline: network access refused")


def _local_vocabulary(url: str, *args: object, **kwargs: object):  # noqa: ANN202 (urlopen's file-like result)
    path = files("eark_validator.ipxml.resources.vocabs") / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise OSError(f"eark_offline: no local copy of {url}")
    return path.open("rb")


def main(argv: list[str]) -> int:
    socket.socket.connect = _no_network  # type: ignore[method-assign]
    socket.create_connection = _no_network  # type: ignore[assignment]
    urllib.request.urlopen = _local_vocabulary  # type: ignore[assignment]
    # imported only now: eark_validator.ipxml.schematron binds urlopen and reads the vocabularies at import
    from eark_validator.packages import PackageValidator
    from eark_validator.specifications.specification import SpecificationVersion

    version = SpecificationVersion(f"V{argv[1]}") if len(argv) > 1 else SpecificationVersion.V2_1_0
    report = PackageValidator(Path(argv[0]), version).validation_report
    print(report.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
