"""The DILCIS vocabularies the validator checks against (CSIP/SIP 2.1.0), kept here so nothing is fetched."""

from __future__ import annotations

#: CSIP content category vocabulary (CSIPVocabularyContentCategory) plus the spec's "OTHER"
CONTENT_CATEGORIES = {
    "Textual works – Print",
    "Textual works – Digital",
    "Textual works – Electronic Serials",
    "Digital Musical Composition (score-based representations)",
    "Photographs – Print",
    "Photographs – Digital",
    "Other Graphic Images – Print",
    "Other Graphic Images – Digital",
    "Microforms",
    "Audio – On Tangible Medium (digital or analog)",
    "Audio – Media-independent (digital)",
    "Motion Pictures – Digital and Physical Media",
    "Video – File-based and Physical Media",
    "Software",
    "Datasets",
    "Geospatial Data",
    "Databases",
    "Websites",
    "Collection",
    "Event",
    "Interactive resource",
    "Physical object",
    "Service",
    "Mixed",
    "Other",
    "OTHER",
}
#: CSIPVocabularyContentInformationType (CSIP 2.1.0)
CONTENT_INFORMATION_TYPES = {
    "ERMS",
    "SIARD1",
    "SIARD2",
    "SIARDDK",
    "GeoData",
    "citscarchival_v1_0",
    "citserms_v2_1",
    "citspremis_v1_0",
    "citsehpj_v1_0",
    "citsehcr_v1_0",
    "citssiard_v1_0",
    "citsgeospatial_v3_0",
    "MIXED",
    "OTHER",
}
RECORD_STATUSES = {"NEW", "SUPPLEMENT", "REPLACEMENT", "TEST", "VERSION", "DELETE", "OTHER"}
OAIS_PACKAGE_TYPES = {"SIP", "AIP", "DIP", "AIU", "AIC"}
