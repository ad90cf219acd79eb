"""Vocabulary of the hospital-shaped demo system (``sjukhus``): units, codes, lab items, vital signs.

Plain data for :mod:`demo.sjukhus`. Order matters: generation picks by index, so reordering an
entry changes every generated database. The lab item ids are the hospital's own (five digits, as
an imported laboratory system numbers its items), mapped to NPU codes in the dictionary table
``klinik.labanalys``; ``include/mappings/sjukhus.yaml`` lists the same ids as its local code list
(a test checks the two agree).
"""

from __future__ import annotations

# (unit code, name, HSA id); the codes are char(6), so "MED" is stored "MED   "
CARE_UNITS = (
    ("AKM", "Sunderby sjukhus, Akutmottagning", "SE2321000230-1001"),
    ("MED1", "Sunderby sjukhus, Medicinavdelning 1", "SE2321000230-1002"),
    ("MED2", "Sunderby sjukhus, Medicinavdelning 2", "SE2321000230-1003"),
    ("KIR", "Sunderby sjukhus, Kirurgavdelning", "SE2321000230-1004"),
    ("ORT", "Sunderby sjukhus, Ortopedavdelning", "SE2321000230-1005"),
    ("IVA", "Sunderby sjukhus, Intensivvårdsavdelning", "SE2321000230-1006"),
    ("HIA", "Sunderby sjukhus, Hjärtintensiven", "SE2321000230-1007"),
    ("OP", "Sunderby sjukhus, Operationsavdelning", "SE2321000230-1008"),
    ("MOTT", "Sunderby sjukhus, Medicinmottagning", "SE2321000230-1009"),
)
WARDS = ("MED1", "MED2", "KIR", "ORT", "IVA", "HIA")
# (code, description): the hospital system's own admission types (imported, in English)
ADMISSION_TYPES = (
    ("EM", "Emergency"),
    ("EL", "Elective"),
    ("OP", "Outpatient visit"),
    ("TR", "Transfer from other hospital"),
)
ADMIT_SOURCES = ("home", "home", "home", "ambulance", "referral", "other hospital")
DISCHARGE_TO = ("home", "home", "home", "nursing home", "other hospital", "rehabilitation")
# ICD-10-SE codes and texts; the mapping trims the char(7) padding
ICD10 = (
    ("J18.9", "Pneumoni, ospecificerad"),
    ("I21.4", "Akut subendokardiell hjärtinfarkt"),
    ("I48.9", "Förmaksflimmer, ospecificerat"),
    ("I50.9", "Hjärtsvikt, ospecificerad"),
    ("S72.0", "Fraktur på lårbenshalsen"),
    ("K35.8", "Akut appendicit, annan och ospecificerad"),
    ("E11.9", "Diabetes mellitus typ 2 utan komplikationer"),
    ("N39.0", "Urinvägsinfektion utan angiven lokalisation"),
    ("J44.1", "KOL med akut exacerbation"),
    ("I63.9", "Cerebral infarkt, ospecificerad"),
    ("K80.2", "Gallsten utan kolecystit"),
    ("R07.4", "Bröstsmärtor, ospecificerade"),
)
# ICD-9-CM codes of the older years (before 1997 in Sweden), with V and E codes
ICD9 = (
    ("486", "Pneumoni, ospecificerad (ICD-9)"),
    ("410.71", "Subendokardiell infarkt (ICD-9)"),
    ("427.31", "Förmaksflimmer (ICD-9)"),
    ("428.0", "Hjärtsvikt (ICD-9)"),
    ("820.8", "Lårbenshalsfraktur (ICD-9)"),
    ("250.00", "Diabetes mellitus (ICD-9)"),
    ("V45.81", "Tillstånd efter bypassoperation (ICD-9 V-kod)"),
    ("V58.61", "Långvarig antikoagulantiabehandling (ICD-9 V-kod)"),
    ("E880.9", "Fall i trappa (ICD-9 E-kod)"),
    ("E849.0", "Olycksplats: hemmet (ICD-9 E-kod)"),
)
#: the year ICD-10 replaced ICD-9 in the demo hospital: earlier stays are coded in ICD-9
ICD10_FROM = 1997
# (code, code system, text): KVÅ codes (char(6) in the source) and older ICD-9-CM procedure codes
PROCEDURES = (
    ("NFB49", "KVA", "Primär total höftledsplastik"),
    ("JKA21", "KVA", "Laparoskopisk appendektomi"),
    ("FNG05", "KVA", "Perkutan koronar intervention (PCI)"),
    ("JKA20", "KVA", "Appendektomi"),
    ("NFJ54", "KVA", "Osteosyntes av lårbenshalsfraktur"),
    ("UJD02", "KVA", "Gastroskopi"),
    ("DT016", "KVA", "Intravenös infusion"),
    ("AQ014", "KVA", "Lumbalpunktion"),
    ("JKB20", "KVA", "Laparoskopisk kolecystektomi"),
)
PROCEDURES_ICD9 = (
    ("81.51", "ICD9PROC", "Total höftledsplastik (ICD-9)"),
    ("47.09", "ICD9PROC", "Appendektomi (ICD-9)"),
    ("36.06", "ICD9PROC", "Koronar stent (ICD-9)"),
)
# code systems the hospital names in its own words (klinik.kodverk)
CODE_SYSTEMS = (
    ("ICD10", "ICD-10-SE", "1.2.752.116.1.1.1"),
    ("ICD9", "ICD-9-CM", "2.16.840.1.113883.6.103"),
    ("KVA", "KVÅ", "1.2.752.116.1.3.2.1.4"),
    ("ICD9PROC", "ICD-9-CM volym 3", "2.16.840.1.113883.6.104"),
)
# (local item id, NPU code, name, unit, reference low, reference high, decimals, low-high of values)
LAB_ITEMS = (
    ("50811", "NPU02319", "B-Hemoglobin (Hb)", "g/L", "117", "153", 0, (80, 175)),
    ("50983", "NPU03429", "P-Natrium", "mmol/L", "137", "145", 0, (125, 150)),
    ("50971", "NPU03230", "P-Kalium", "mmol/L", "3,5", "4,4", 1, (2.9, 5.8)),
    ("50889", "NPU19748", "P-CRP", "mg/L", "", "<5", 0, (1, 250)),
    ("50912", "NPU04998", "P-Kreatinin", "µmol/L", "45", "90", 0, (40, 260)),
    ("51301", "NPU02593", "B-Leukocyter", "10^9/L", "3,5", "8,8", 1, (2.0, 22.0)),
    ("51265", "NPU03568", "B-Trombocyter", "10^9/L", "165", "387", 0, (80, 520)),
    ("50931", "NPU22089", "fP-Glukos", "mmol/L", "4,0", "6,0", 1, (3.2, 18.0)),
    ("50862", "NPU19673", "P-Albumin", "g/L", "36", "48", 0, (22, 50)),
    ("51006", "NPU01459", "P-Urea", "mmol/L", "3,1", "7,9", 1, (2.0, 30.0)),
)
#: item ids no dictionary row names (an import that lost its dictionary entry): invalid codes
BAD_LAB_ITEMS = ("99999", "5081", "50811A", "NPU02319")
# (parameter, name, unit, reference low, reference high, decimals, low-high of values)
VITALS = (
    ("PULS", "Puls", "/min", "50", "100", 0, (38, 150)),
    ("BTSYS", "Blodtryck, systoliskt", "mmHg", "90", "140", 0, (80, 200)),
    ("BTDIA", "Blodtryck, diastoliskt", "mmHg", "60", "90", 0, (45, 115)),
    ("SPO2", "Syremättnad", "%", "94", "100", 0, (84, 100)),
    ("TEMP", "Kroppstemperatur", "°C", "36,0", "38,0", 1, (35.2, 40.4)),
    ("AF", "Andningsfrekvens", "/min", "12", "20", 0, (8, 34)),
)
# (ATC, product, dose, unit, route, frequency); group-level codes are valid ATC codes too
MEDICINES = (
    ("N02BE01", "Paracetamol 500 mg tablett", "1000", "mg", "oral", "x 4"),
    ("B01AB01", "Heparin 5000 IE/ml injektionsvätska", "5000", "IE", "subkutan", "x 2"),
    ("J01CE01", "Bensylpenicillin 1 g pulver till injektionsvätska", "1", "g", "intravenös", "x 3"),
    ("C03CA01", "Furosemid 10 mg/ml injektionsvätska", "40", "mg", "intravenös", "x 1"),
    ("N02AA01", "Morfin 10 mg/ml injektionsvätska", "5", "mg", "intravenös", "vid behov"),
    ("A10AB05", "Insulin aspart 100 E/ml", "4", "E", "subkutan", "x 3"),
    ("B05BB01", "Ringer-acetat infusionsvätska", "1000", "ml", "intravenös", "x 1"),
    ("C07AB02", "Metoprolol 50 mg depottablett", "50", "mg", "oral", "x 1"),
    ("N02B", "Analgetikum enligt lokal lista", "1", "st", "oral", "vid behov"),
    ("J01", "Antibiotikum enligt odlingssvar", "1", "dos", "intravenös", "x 3"),
)
BAD_ATC = ("N2BE01", "N02BE1", "XX99", "02BE01", "N02BEX1")
NOTE_TYPES = (
    ("INSKR", "Inskrivningsanteckning"),
    ("DAG", "Daganteckning"),
    ("OMV", "Omvårdnadsanteckning"),
    ("OP", "Operationsberättelse"),
    ("UTSKR", "Utskrivningsanteckning"),
)
NOTE_PHRASES = (
    "Patienten inkommer med ambulans efter fall i hemmet.",
    "Allmäntillståndet är påverkat, vaken och orienterad.",
    "Hjärta: regelbunden rytm, inga blåsljud.",
    "Lungor: nedsatta andningsljud basalt höger.",
    "Buk: mjuk, ömmar i höger fossa.",
    "Bedömning: sannolik pneumoni, behandlas med bensylpenicillin.",
    "Smärtlindring med paracetamol och vid behov morfin.",
    "Mobiliseras med stöd av sjukgymnast, går med rollator.",
    "Sover gott, inga nattliga besvär.",
    "Äter och dricker bra, vätskelista förs.",
    "Såret läker fint, inga tecken på infektion.",
    "Planering: fortsatt övervakning av vitalparametrar, ny kontroll av CRP i morgon.",
    "Utskrivning till hemmet med uppföljning på vårdcentral om två veckor.",
)
ORDER_TYPES = (
    ("lab", "Klinisk kemi", "Sunderby sjukhus, Klinisk kemi"),
    ("rtg", "Slätröntgen thorax", "Sunderby sjukhus, Röntgen"),
    ("rtg", "DT hjärna", "Sunderby sjukhus, Röntgen"),
    ("fys", "Sjukgymnastik", "Sunderby sjukhus, Rehabilitering"),
)
ORDER_STATUS = ("klar", "klar", "klar", "pågår", "makulerad")
REFERRAL_TO = (
    "Sunderby sjukhus, Kardiologmottagning",
    "Sunderby sjukhus, Ortopedmottagning",
    "Hälsocentralen Hertsön, Luleå",
    "Piteå älvdals sjukhus, Rehabilitering",
)
REFERRAL_QUESTIONS = (
    "Frågeställning: uppföljning efter hjärtinfarkt, ställningstagande till fortsatt behandling.",
    "Frågeställning: kontroll efter höftledsplastik, röntgen inför besöket.",
    "Frågeställning: uppföljning av diabetes och blodtryck.",
    "Frågeställning: rehabilitering efter stroke, bedömning av ADL-förmåga.",
)
SPECIMENS = ("Venöst blod", "Venöst blod", "Venöst blod", "Kapillärt blod", "Urin")
ACTIONS = ("VIEW", "VIEW", "VIEW", "VIEW", "PRINT", "EDIT", "EMERGENCY_ACCESS")
STAFF_TITLES = ("Läkare", "Läkare", "Sjuksköterska", "Sjuksköterska", "Undersköterska", "Biomedicinsk analytiker")
