"""Vocabulary of the synthetic legacy systems: names, care units, note phrases, codes.

Plain data for :mod:`demo.generate`: Swedish given and family names, care units and
contact types, journal note phrases by heading, ICD-10, ATC and NPU codes with their
invalid variants, attachment names, and the tables used to damage text (broken
encodings, XML-illegal characters). Order matters: generation picks by index, so
reordering an entry changes every generated database.
"""

from __future__ import annotations

MEN = (
    "Anders Björn Erik Lars Karl Per Nils Olof Gustav Johan Mikael Stefan Jörgen Göran Åke Sven "
    "Lennart Magnus Håkan Pär Mats Oskar Elias Hugo Linus Måns Axel Viktor Emil Tore Örjan Ragnar"
).split()
WOMEN = (
    "Anna Åsa Märta Karin Kerstin Birgitta Eva Ingrid Margareta Elisabeth Maria Lena Sara Emma Maja "
    "Ebba Ellinor Agneta Gunnel Britt-Marie Sofia Linnéa Ylva Barbro Ulla Malin Jenny Signe Saga Astrid Märit"
).split()
FAMILY = (
    "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson Pettersson "
    "Jonsson Lindström Öberg Åberg Lindqvist Lundgren Björk Holmström Sjöberg Bergström Nyström Lundström "
    "Häggström Wikström Strömberg Forsberg Ek Sandström Marklund Nordström Öhman Lindbäck Rönnbäck Hietala "
    "Niemi Lantto Kuoksu Labba Pirak Björklund Åström Sundqvist Löfgren"
).split()
UNITS = (
    "Sunderby sjukhus, Medicinklinik",
    "Sunderby sjukhus, Akutmottagning",
    "Sunderby sjukhus, Kirurgklinik",
    "Piteå älvdals sjukhus, Ortopedi",
    "Gällivare sjukhus, Medicinklinik",
    "Kiruna sjukhus, Akutmottagning",
    "Kalix vårdcentral",
    "Bodens vårdcentral",
    "Arvidsjaurs hälsocentral",
    "Hälsocentralen Hertsön, Luleå",
)
CONTACT_TYPES = ("Öppenvård", "Öppenvård", "Öppenvård", "Slutenvård", "Telefon", "Telefon")
EVENTS = (
    "Läst journal",
    "Läst journal",
    "Läst journal",
    "Läst journal",
    "Läst journal",
    "Läst journal",
    "Utskrift",
    "Läst labsvar",
    "Skapat anteckning",
    "Ändrat anteckning",
    "Nödåtkomst",
)
NOTE_TEMPLATES = (
    ("Aktuellt", "Status", "Bedömning", "Åtgärd"),
    ("Anamnes", "Aktuellt", "Status", "Bedömning", "Planering"),
    ("Aktuellt", "Bedömning", "Åtgärd", "Planering"),
    ("Status", "Bedömning", "Planering"),
    ("Aktuellt", "Status", "Bedömning"),
)
PHRASES = {
    "Aktuellt": (
        "Patienten söker för tilltagande andfåddhet sedan {n} dagar.",
        "Inkommer med ambulans efter fall i hemmet, slog i {side} höft.",
        "Återbesök för uppföljning av blodtrycket.",
        "Ringer och berättar om feber och hosta sedan i helgen.",
        "Kvarstående smärta i ländryggen trots Alvedon.",
        "Remitteras från vårdcentralen för bedömning av bröstsmärta.",
        "Sedan {n} veckor tilltagande trötthet och viktnedgång.",
        "Diabeteskontroll, mår bra och sköter sina mätningar.",
        "Söker för sårskada på {side} underben som inte läker.",
        "Yrsel vid uppresning sedan några dagar, ingen svimning.",
        "Svullnad och värmeökning i {side} knä sedan {n} dagar.",
        "Hjärtklappning i omgångar, senast i morse.",
        "Anhöriga kontaktar mottagningen, patienten äter och dricker dåligt.",
        "Sveda vid miktion och täta trängningar sedan {n} dagar.",
    ),
    "Anamnes": (
        "Tidigare frisk. Inga kända allergier.",
        "Hypertoni sedan {n} år, behandlas med Seloken.",
        "Genomgången hjärtinfarkt för några år sedan. Röker inte.",
        "Diabetes typ 2, tablettbehandlad. Överkänslig mot penicillin.",
        "Bor ensam i lägenhet med hemtjänst två gånger dagligen.",
        "Astma sedan barndomen, använder Ventoline vid behov.",
        "Förmaksflimmer, står på Eliquis. Gift, pensionär.",
        "Opererad för gallsten. Snusar, dricker alkohol måttligt.",
        "Hypotyreos, står på Levaxin. Arbetar som undersköterska.",
        "KOL, tidigare rökare. Bor i villa med sin make.",
    ),
    "Status": (
        "AT: Opåverkad, vaken och orienterad.",
        "Cor: Regelbunden rytm, inga blåsljud. BT {bts}/{btd}, puls {puls}.",
        "Pulm: Vesikulärt andningsljud bilateralt, inga rassel. Saturation {sat} %.",
        "Buk: Mjuk och oöm, inga resistenser.",
        "Temp {temp}. Lätt rodnad kring såret utan tecken på abscess.",
        "Neurologiskt grovt utan anmärkning.",
        "Öm över laterala malleolen, kan inte belasta foten.",
        "Munhåla och svalg: Lätt rodnad, inga beläggningar.",
        "Hud: Torr, inga utslag. Pittingödem på båda underbenen.",
        "Rörlighet i ländryggen nedsatt, Lasègue negativt bilateralt.",
        "Andningsfrekvens 18 per minut, talar hela meningar.",
    ),
    "Bedömning": (
        "Bilden talar för pneumoni, CRP {crp}.",
        "Sannolikt muskuloskeletal smärta, inget som talar för hjärtgenes.",
        "Välreglerat blodtryck, ingen ändring av medicineringen.",
        "Misstänkt fraktur, röntgen beställd.",
        "Lätt försämrad hjärtsvikt med ödem på underbenen.",
        "Stabil, ingen akut åtgärd behövs.",
        "Oklar trötthet, utreds vidare med blodprover.",
        "Nedre urinvägsinfektion utan tecken på pyelonefrit.",
        "Sannolikt virusinfektion, ingen antibiotika behövs.",
        "Försämrad diabeteskontroll, HbA1c stigande.",
        "Sår med långsam läkning, god cirkulation i foten.",
    ),
    "Åtgärd": (
        "Insätter Kåvepenin 1 g 3 gånger dagligen i tio dagar.",
        "Hb, CRP, elstatus och kreatinin tas idag.",
        "Omläggning av såret, ny tid för kontroll om en vecka.",
        "Ökar Furix till 40 mg på morgonen.",
        "Sjukskrivs två veckor.",
        "Remiss skickad till ortopedmottagningen.",
        "EKG tas och visar sinusrytm utan ischemitecken.",
        "Får smärtlindring med Alvedon och Ipren vid behov.",
        "Röntgen av {side} fotled beställd.",
        "Läggs in på medicinavdelningen för observation.",
    ),
    "Planering": (
        "Återbesök om {n} veckor eller tidigare vid försämring.",
        "Patienten informerad och införstådd med planen.",
        "Kontakt med distriktssköterska för blodtryckskontroller.",
        "Ny bedömning när röntgensvaret kommit.",
        "Åter vid behov.",
        "Telefonkontakt med provsvar om en vecka.",
        "Uppföljning på hälsocentralen om {n} månader.",
        "Hemgång i dag med muntlig och skriftlig information.",
    ),
}
ANA_PHRASES = (
    (
        "Preoperativt",
        (
            "Fastande sedan midnatt. Inga kända allergier.",
            "ASA-bedömd på mottagningen, lätt hypertoni.",
            "Tidigare anestesi utan komplikationer.",
            "Orolig inför ingreppet, får lugnande.",
        ),
    ),
    (
        "Anestesi",
        (
            "Induktion med propofol och fentanyl, larynxmask.",
            "Spinalbedövning i L3-L4 utan svårigheter.",
            "Intubering utan anmärkning, underhåll med sevofluran.",
            "Plexusblockad under ultraljud.",
        ),
    ),
    (
        "Förlopp",
        (
            "Stabil cirkulation under hela ingreppet.",
            "Kortvarigt blodtrycksfall som svarade på efedrin.",
            "Blödning cirka {n}0 ml, inga transfusioner.",
            "Okomplicerat förlopp.",
        ),
    ),
    (
        "Postoperativt",
        (
            "Vaken och smärtfri på uppvakningsavdelningen.",
            "Illamående, får ondansetron.",
            "Åter till vårdavdelning efter två timmar.",
            "Smärtlindring med morfin vid behov.",
        ),
    ),
)
ICD = (
    "J18.9",
    "I10",
    "E11.9",
    "I48.9",
    "J44.1",
    "K35.8",
    "S72.0",
    "M54.5",
    "F32.1",
    "C50.9",
    "N39.0",
    "R07.4",
    "I50.9",
    "J06.9",
    "L03.1",
    "S52.5",
    "E78.0",
    "G45.9",
    "I21.4",
    "K80.2",
    "M17.1",
    "F41.1",
    "J189",
    "E119",
)
MEDICINES = (
    ("N02BE01", "Alvedon 500 mg tablett", "2 tabletter vid behov, högst 8 per dygn"),
    ("C07AB02", "Seloken ZOC 50 mg depottablett", "1 tablett på morgonen"),
    ("B01AC06", "Trombyl 75 mg tablett", "1 tablett dagligen"),
    ("C09AA05", "Triatec 5 mg tablett", "1 tablett dagligen"),
    ("A02BC01", "Omeprazol 20 mg kapsel", "1 kapsel på morgonen"),
    ("C03CA01", "Furix 40 mg tablett", "1 tablett på morgonen"),
    ("N05CF01", "Imovane 7,5 mg tablett", "1 tablett till natten vid behov"),
    ("A10BA02", "Metformin 500 mg tablett", "1 tablett morgon och kväll"),
    ("H03AA01", "Levaxin 100 mikrogram tablett", "1 tablett på fastande mage"),
    ("J01CE02", "Kåvepenin 1 g tablett", "1 tablett 3 gånger dagligen i 10 dagar"),
    ("C10AA01", "Simvastatin 20 mg tablett", "1 tablett till kvällen"),
    ("R03AC02", "Ventoline 0,1 mg/dos inhalationsspray", "1-2 doser vid behov"),
    ("B01AF02", "Eliquis 5 mg tablett", "1 tablett 2 gånger dagligen"),
    ("N06AB06", "Sertralin 50 mg tablett", "1 tablett på morgonen"),
    ("N02AA01", "Morfin 10 mg tablett", "1 tablett vid behov, högst 4 per dygn"),
)
# (NPU code, analysis, unit, low, high, decimals)
ANALYSES = (
    ("NPU02319", "B-Hemoglobin (Hb)", "g/L", 95, 170, 0),
    ("NPU03429", "P-Natrium", "mmol/L", 130, 148, 0),
    ("NPU03230", "P-Kalium", "mmol/L", 3.2, 5.4, 1),
    ("NPU19748", "P-CRP", "mg/L", 1, 180, 0),
    ("NPU04998", "P-Kreatinin", "µmol/L", 45, 180, 0),
    ("NPU02593", "B-Leukocyter", "10^9/L", 3.0, 18.0, 1),
    ("NPU03568", "B-Trombocyter", "10^9/L", 120, 450, 0),
    ("NPU27300", "B-HbA1c", "mmol/mol", 30, 95, 0),
    ("NPU22089", "fP-Glukos", "mmol/L", 4.0, 14.0, 1),
    ("NPU03577", "P-TSH", "mIU/L", 0.3, 6.0, 1),
    ("NPU19673", "P-Albumin", "g/L", 28, 48, 0),
)
BAD_ICD = ("XYZ", "12.3", "J1", "189.J", "JJ8.9", "I10.999")
BAD_ATC = ("N2B", "N02BE1", "02BE01", "N02BEX1", "XYZ")
BAD_NPU = ("NPU123", "NPU1234567", "XYZ", "N02319", "NPUABCDE")
ATTACHMENTS = (
    (
        "application/pdf",
        (
            "remiss_röntgen.pdf",
            "epikris.pdf",
            "läkarintyg.pdf",
            "samtycke_provtagning.pdf",
            "remissvar_ortoped.pdf",
            "vårdplan.pdf",
        ),
    ),
    ("image/tiff", ("inskannad_journal.tif", "ekg_vilo.tif", "gammal_journalkopia.tif", "spirometri.tif")),
    ("image/jpeg", ("sårbild.jpg", "hudförändring.jpg", "fotografi_fotsår.jpg")),
)
ASA = ("ASA 1", "ASA 2", "ASA 2", "ASA 3", "ASA 3", "ASA 4", "ASA 2E")
ANA_FORMS = (
    "Generell anestesi",
    "Generell anestesi",
    "Spinalanestesi",
    "Epiduralanestesi",
    "Regional blockad",
    "Sedering",
)
PDF_WORDS = (
    "remiss",
    "undersokning",
    "provsvar",
    "bedomning",
    "klinik",
    "datum",
    "signerad",
    "kontroll",
    "rontgen",
    "lakare",
    "journal",
    "kopia",
    "sida",
    "region",
    "norrbotten",
    "svar",
)
# encoding damage: UTF-8 read as Latin-1, CP850 read as CP1252, 7-bit Swedish (ISO 646-SE)
DAMAGE = (
    str.maketrans({"ä": "Ã¤", "ö": "Ã¶", "å": "Ã¥"}),
    str.maketrans({"å": "†", "ä": "„", "ö": "”"}),
    str.maketrans({"å": "}", "ä": "{", "ö": "|", "Å": "]", "Ä": "[", "Ö": "\\"}),
)
XML_ILLEGAL = tuple(chr(c) for c in (*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE))
