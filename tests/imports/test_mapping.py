"""Column mapping: header detection, plans, overrides and row application (no database)."""

import csv
import io

import pytest

from imports.mapping import CANONICAL_FIELDS, MappingError, build_plan, detect_mapping
from imports.readers.base import SourceRow

from ..conftest import SHARED_DATA as DATA


def by_header(header):
    """Return {header text: target} of the detected mapping, for readable assertions."""
    return {header[i]: target for i, target in detect_mapping(header).items()}


def apply(header, cells, **kwargs):
    """Return the values of the RawRecord that a plan for header makes of one row."""
    return build_plan(header, **kwargs).apply(SourceRow(line=2, cells=cells)).values


def texts(values, field):
    return [text for _, text in values.get(field, [])]


# --- detection: spelling ------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, target",
    [
        ("E-mail Address", "email"),
        ("e_mail", "email"),
        ("EMAIL", "email"),
        ("emailAddress", "email"),
        ("firstName", "first_name"),
        ("First Name", "first_name"),
        ("FIRST_NAME", "first_name"),
        ("first-name", "first_name"),
        ("  First  Name ", "first_name"),
        ("\ufeffFirst Name", "first_name"),
        ("phoneNumber", "phone"),
        ("Phone #", "phone"),
        ("Tel.", "phone"),
        ("Telephone", "phone"),
        ("Mobile", "phone"),
        ("Cell", "phone"),
        ("Cell #", "phone"),
        ("iPhone", "phone"),
        ("ZIP", "zip"),
        ("Postal Code", "zip"),
        ("Zip/Postal code", "zip"),
        ("zipCode", "zip"),
        ("State/Province", "state"),
        ("State/Region", "state"),
        ("Country/Region", "country"),
        ("Tags", "tags"),
        ("Labels", "tags"),
        ("Groups", "tags"),
        ("Categories", "tags"),
        ("Full Name", "display_name"),
        ("Time Zone", "timezone"),
        ("Date of Birth", "birthday"),
        ("Customer Email", "email"),
        ("Contact Phone", "phone"),
    ],
)
def test_it_matches_a_header_whatever_its_case_spacing_and_punctuation(header, target):
    assert detect_mapping([header]) == {0: target}


@pytest.mark.parametrize(
    "header",
    [
        "Fax",
        "Home Fax",
        "Business Fax",
        "Fax Number",
        "Pager",
        "Pager Number",
        "TTY/TDD Phone",
        "Telex",
        "Assistant's Phone",
        "Company Main Phone",
        "Manager's Name",
        "Assistant's Name",
        "Additional Name",
        "Given Name Yomi",
        "Middle Name",
        "Nickname",
        "Job Title",
        "Web Page",
        "IMAddress",
        "Phone Video",
        "Owner Email",
        "Contact Owner",
        "Birth Year",
        "Office Location",
        "Home Page",
        "",
        "   ",
    ],
)
def test_it_leaves_columns_that_are_not_the_contacts_own_fields_unmapped(header):
    assert detect_mapping([header]) == {}


def test_it_maps_every_contact_field_name_in_snake_case_and_camel_case():
    snake = list(CANONICAL_FIELDS)
    camel = [name.split("_")[0] + "".join(w.title() for w in name.split("_")[1:]) for name in snake]

    assert detect_mapping(snake) == dict(enumerate(snake))
    assert detect_mapping(camel) == dict(enumerate(snake))


def test_it_maps_our_own_exporter_and_seed_headers():
    header = ["firstName", "lastName", "phoneNumber", "email", "tags", "custom.shoe_size", "custom.12"]

    assert by_header(header) == {
        "firstName": "first_name",
        "lastName": "last_name",
        "phoneNumber": "phone",
        "email": "email",
        "tags": "tags",
        "custom.shoe_size": "custom.shoe_size",
        "custom.12": "custom.12",
    }


def test_it_maps_our_secondary_phone_and_email_lists_after_the_primary_ones():
    header = ["secondary_phones", "phone", "secondary_emails", "email"]

    values = apply(header, ["+1 555 0100; +1 555 0101", "+1 555 0199", "b@x.io, c@x.io", "a@x.io"])

    assert texts(values, "phone") == ["+1 555 0199", "+1 555 0100", "+1 555 0101"]
    assert texts(values, "email") == ["a@x.io", "b@x.io", "c@x.io"]


def test_it_slugifies_a_custom_column_whose_key_is_not_a_valid_key():
    assert detect_mapping(["custom.Favourite Colour"]) == {0: "custom.favourite_colour"}


# --- detection: header families -------------------------------------------------------------

GOOGLE_LEGACY = (
    "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,Additional Name Yomi,"
    "Family Name Yomi,Name Prefix,Name Suffix,Initials,Nickname,Short Name,Maiden Name,Birthday,"
    "Gender,Location,Billing Information,Directory Server,Mileage,Occupation,Hobby,Sensitivity,"
    "Priority,Subject,Notes,Group Membership,E-mail 1 - Type,E-mail 1 - Value,E-mail 2 - Type,"
    "E-mail 2 - Value,Phone 1 - Type,Phone 1 - Value,Phone 2 - Type,Phone 2 - Value,"
    "Address 1 - Type,Address 1 - Formatted,Address 1 - Street,Address 1 - City,Address 1 - PO Box,"
    "Address 1 - Region,Address 1 - Postal Code,Address 1 - Country,Address 1 - Extended Address,"
    "Organization 1 - Type,Organization 1 - Name,Organization 1 - Title,Website 1 - Type,"
    "Website 1 - Value"
).split(",")

GOOGLE_NEW = (
    "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,"
    "Name Prefix,Name Suffix,Nickname,File As,Organization Name,Organization Title,"
    "Organization Department,Birthday,Notes,Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,"
    "E-mail 2 - Label,E-mail 2 - Value,Phone 1 - Label,Phone 1 - Value,Phone 2 - Label,"
    "Phone 2 - Value,Address 1 - Label,Address 1 - Formatted,Address 1 - Street,Address 1 - City,"
    "Address 1 - PO Box,Address 1 - Region,Address 1 - Postal Code,Address 1 - Country,"
    "Address 1 - Extended Address,Website 1 - Label,Website 1 - Value"
).split(",")

OUTLOOK = (
    "Title,First Name,Middle Name,Last Name,Suffix,Company,Department,Job Title,Business Street,"
    "Business Street 2,Business Street 3,Business City,Business State,Business Postal Code,"
    "Business Country/Region,Home Street,Home Street 2,Home Street 3,Home City,Home State,"
    "Home Postal Code,Home Country/Region,Other Street,Other City,Other State,Other Postal Code,"
    "Other Country/Region,Assistant's Phone,Business Fax,Business Phone,Business Phone 2,Callback,"
    "Car Phone,Company Main Phone,Home Fax,Home Phone,Home Phone 2,ISDN,Mobile Phone,Other Fax,"
    "Other Phone,Pager,Primary Phone,Radio Phone,TTY/TDD Phone,Telex,Account,Anniversary,"
    "Assistant's Name,Billing Information,Birthday,Business Address PO Box,Categories,Children,"
    "Directory Server,E-mail Address,E-mail Type,E-mail Display Name,E-mail 2 Address,E-mail 2 Type,"
    "E-mail 2 Display Name,E-mail 3 Address,E-mail 3 Type,E-mail 3 Display Name,Gender,"
    "Government ID Number,Hobby,Home Address PO Box,Initials,Internet Free Busy,Keywords,Language,"
    "Location,Manager's Name,Mileage,Notes,Office Location,Organizational ID Number,"
    "Other Address PO Box,Priority,Private,Profession,Referred By,Sensitivity,Spouse,User 1,"
    "Web Page"
).split(",")

OUTLOOK_COM = (
    "First Name,Middle Name,Last Name,Title,Suffix,Nickname,Given Yomi,Surname Yomi,E-mail Address,"
    "E-mail 2 Address,E-mail 3 Address,Home Phone,Home Phone 2,Business Phone,Business Phone 2,"
    "Mobile Phone,Car Phone,Other Phone,Primary Phone,Pager,Business Fax,Home Fax,Other Fax,"
    "Company Main Phone,Callback,Radio Phone,Telex,TTY/TDD Phone,IMAddress,Job Title,Department,"
    "Company,Office Location,Manager's Name,Assistant's Name,Assistant's Phone,Company Yomi,"
    "Business Street,Business City,Business State,Business Postal Code,Business Country/Region,"
    "Home Street,Home City,Home State,Home Postal Code,Home Country/Region,Other Street,Other City,"
    "Other State,Other Postal Code,Other Country/Region,Personal Web Page,Spouse,Schools,Hobby,"
    "Location,Web Page,Birthday,Anniversary,Notes"
).split(",")

THUNDERBIRD = (
    "First Name,Last Name,Display Name,Nickname,Primary Email,Secondary Email,Screen Name,Work Phone,"
    "Home Phone,Fax Number,Pager Number,Mobile Number,Home Address,Home Address 2,Home City,"
    "Home State,Home ZipCode,Home Country,Work Address,Work Address 2,Work City,Work State,"
    "Work ZipCode,Work Country,Job Title,Department,Organization,Web Page 1,Web Page 2,Birth Year,"
    "Birth Month,Birth Day,Custom 1,Custom 2,Custom 3,Custom 4,Notes,"
).split(",")


def test_it_maps_the_google_contacts_legacy_header():
    mapping = by_header(GOOGLE_LEGACY)

    assert mapping == {
        "Name": "display_name",
        "Given Name": "first_name",
        "Family Name": "last_name",
        "Birthday": "birthday",
        "Gender": "gender",
        "Notes": "notes",
        "Group Membership": "tags",
        "E-mail 1 - Value": "email",
        "E-mail 2 - Value": "email",
        "Phone 1 - Value": "phone",
        "Phone 2 - Value": "phone",
        "Address 1 - Formatted": "address",
        "Address 1 - Street": "address",
        "Address 1 - City": "city",
        "Address 1 - PO Box": "address",
        "Address 1 - Region": "state",
        "Address 1 - Postal Code": "zip",
        "Address 1 - Country": "country",
        "Address 1 - Extended Address": "address",
        "Organization 1 - Name": "company",
    }


def test_it_maps_the_google_contacts_new_header():
    mapping = by_header(GOOGLE_NEW)

    assert mapping == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Organization Name": "company",
        "Birthday": "birthday",
        "Notes": "notes",
        "Photo": "avatar_url",
        "Labels": "tags",
        "E-mail 1 - Value": "email",
        "E-mail 2 - Value": "email",
        "Phone 1 - Value": "phone",
        "Phone 2 - Value": "phone",
        "Address 1 - Formatted": "address",
        "Address 1 - Street": "address",
        "Address 1 - City": "city",
        "Address 1 - PO Box": "address",
        "Address 1 - Region": "state",
        "Address 1 - Postal Code": "zip",
        "Address 1 - Country": "country",
        "Address 1 - Extended Address": "address",
    }


def test_it_maps_the_outlook_desktop_header():
    mapping = by_header(OUTLOOK)

    phones = [h for h, t in mapping.items() if t == "phone"]
    emails = [h for h, t in mapping.items() if t == "email"]
    assert phones == [
        "Business Phone",
        "Business Phone 2",
        "Car Phone",
        "Home Phone",
        "Home Phone 2",
        "Mobile Phone",
        "Other Phone",
        "Primary Phone",
    ]
    assert emails == ["E-mail Address", "E-mail 2 Address", "E-mail 3 Address"]
    assert {h: mapping[h] for h in ("First Name", "Last Name", "Company", "Birthday", "Notes")} == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Company": "company",
        "Birthday": "birthday",
        "Notes": "notes",
    }
    assert mapping["Categories"] == "tags"
    assert mapping["Business Country/Region"] == "country"
    assert mapping["Home Postal Code"] == "zip"
    assert mapping["Business Address PO Box"] == "address"
    assert mapping["Gender"] == "gender"
    assert mapping["Language"] == "language"
    for ignored in ("Title", "Account", "Private", "Keywords", "E-mail Type", "E-mail Display Name", "Spouse"):
        assert ignored not in mapping


def test_it_maps_the_outlook_com_header():
    mapping = by_header(OUTLOOK_COM)

    assert sorted(set(mapping.values())) == [
        "address",
        "birthday",
        "city",
        "company",
        "country",
        "email",
        "first_name",
        "last_name",
        "notes",
        "phone",
        "state",
        "zip",
    ]
    assert "Surname Yomi" not in mapping
    assert "Company Main Phone" not in mapping
    assert [h for h, t in mapping.items() if t == "email"] == ["E-mail Address", "E-mail 2 Address", "E-mail 3 Address"]


def test_it_maps_the_thunderbird_header_and_joins_its_birth_date_parts():
    mapping = by_header(THUNDERBIRD)

    assert mapping["Primary Email"] == mapping["Secondary Email"] == "email"
    assert [h for h, t in mapping.items() if t == "phone"] == ["Work Phone", "Home Phone", "Mobile Number"]
    assert mapping["Home ZipCode"] == "zip"
    assert mapping["Organization"] == "company"
    assert [h for h, t in mapping.items() if t == "birthday"] == ["Birth Year", "Birth Month", "Birth Day"]
    for ignored in ("Fax Number", "Pager Number", "Screen Name", "Custom 1", "Web Page 1", ""):
        assert ignored not in mapping

    cells = [""] * len(THUNDERBIRD)
    cells[THUNDERBIRD.index("Birth Year")] = "1975"
    cells[THUNDERBIRD.index("Birth Month")] = "3"
    cells[THUNDERBIRD.index("Birth Day")] = "7"
    assert apply(THUNDERBIRD, cells)["birthday"] == [("Birth Year/Birth Month/Birth Day", "1975-03-07")]


def test_it_skips_a_thunderbird_birthday_without_a_year():
    cells = [""] * len(THUNDERBIRD)
    cells[THUNDERBIRD.index("Birth Month")] = "3"
    cells[THUNDERBIRD.index("Birth Day")] = "7"

    assert "birthday" not in apply(THUNDERBIRD, cells)


def test_it_reads_birth_day_alone_as_the_whole_birthday():
    assert detect_mapping(["Birth Day", "Email"]) == {0: "birthday", 1: "email"}


def test_it_maps_apple_contacts_exporter_headers():
    header = [
        "First name",
        "Last name",
        "Organization",
        "Phone : mobile",
        "Phone : iPhone",
        "Phone : home",
        "Email : work",
        "Address : home : Street",
        "Address : home : City",
        "Address : home : ZIP",
    ]

    assert detect_mapping(header) == {
        0: "first_name",
        1: "last_name",
        2: "company",
        3: "phone",
        4: "phone",
        5: "phone",
        6: "email",
        7: "address",
        8: "city",
        9: "zip",
    }


def test_it_maps_hubspot_and_mailchimp_exports():
    hubspot = [
        "Record ID",
        "First Name",
        "Last Name",
        "Email",
        "Phone Number",
        "Mobile Phone Number",
        "Company Name",
        "Street Address",
        "City",
        "State/Region",
        "Postal Code",
        "Country/Region",
        "Lifecycle Stage",
        "Contact owner",
        "Time Zone",
    ]
    mailchimp = [
        "Email Address",
        "First Name",
        "Last Name",
        "Address",
        "Phone Number",
        "Birthday",
        "MEMBER_RATING",
        "OPTIN_TIME",
        "LATITUDE",
        "TIMEZONE",
        "CC",
        "REGION",
        "LEID",
        "EUID",
        "NOTES",
        "TAGS",
    ]

    assert by_header(hubspot) == {
        "Record ID": "external_id",
        "First Name": "first_name",
        "Last Name": "last_name",
        "Email": "email",
        "Phone Number": "phone",
        "Mobile Phone Number": "phone",
        "Company Name": "company",
        "Street Address": "address",
        "City": "city",
        "State/Region": "state",
        "Postal Code": "zip",
        "Country/Region": "country",
        "Lifecycle Stage": "lifecycle_stage",
        "Time Zone": "timezone",
    }
    assert by_header(mailchimp) == {
        "Email Address": "email",
        "First Name": "first_name",
        "Last Name": "last_name",
        "Address": "address",
        "Phone Number": "phone",
        "Birthday": "birthday",
        "TIMEZONE": "timezone",
        "NOTES": "notes",
        "TAGS": "tags",
    }


# --- phones and emails ------------------------------------------------------------------------


def test_it_orders_phones_mobile_then_primary_then_business_then_home_then_other_whatever_the_column_order():
    header = ["Other Phone", "Home Phone", "Business Phone", "Phone", "Mobile Phone", "Home Phone 2"]

    values = apply(header, ["6", "4", "3", "2", "1", "5"])

    assert values["phone"] == [
        ("Mobile Phone", "1"),
        ("Phone", "2"),
        ("Business Phone", "3"),
        ("Home Phone", "4"),
        ("Home Phone 2", "5"),
        ("Other Phone", "6"),
    ]


def test_it_ranks_a_home_mobile_as_a_mobile():
    values = apply(["Home Phone", "Work Phone", "Home Mobile"], ["h", "w", "m"])

    assert texts(values, "phone") == ["m", "w", "h"]


def test_it_moves_a_google_phone_typed_mobile_first_row_by_row():
    header = ["Phone 1 - Type", "Phone 1 - Value", "Phone 2 - Type", "Phone 2 - Value"]
    plan = build_plan(header)

    first = plan.apply(SourceRow(2, ["Work", "+1 919 555 0001", "Mobile", "+1 919 555 0002"]))
    second = plan.apply(SourceRow(3, ["Mobile", "+1 919 555 0003", "Home", "+1 919 555 0004"]))

    assert texts(first.values, "phone") == ["+1 919 555 0002", "+1 919 555 0001"]
    assert texts(second.values, "phone") == ["+1 919 555 0003", "+1 919 555 0004"]


def test_it_drops_google_phones_typed_fax_or_pager():
    header = [
        "Phone 1 - Label",
        "Phone 1 - Value",
        "Phone 2 - Label",
        "Phone 2 - Value",
        "Phone 3 - Label",
        "Phone 3 - Value",
    ]

    values = apply(header, ["Home Fax", "111", "Pager", "222", "* Home", "333"])

    assert values["phone"] == [("Phone 3 - Value", "333")]


def test_it_splits_a_google_value_cell_holding_several_phones_or_emails():
    header = ["E-mail 1 - Type", "E-mail 1 - Value", "Phone 1 - Type", "Phone 1 - Value"]

    values = apply(header, ["Work", "a@x.io ::: b@x.io", "Mobile", "+1 919 555 0001 ::: +1 919 555 0002"])

    assert values["email"] == [("E-mail 1 - Value", "a@x.io"), ("E-mail 1 - Value", "b@x.io")]
    assert values["phone"] == [("Phone 1 - Value", "+1 919 555 0001"), ("Phone 1 - Value", "+1 919 555 0002")]


def test_it_puts_googles_starred_primary_email_first():
    header = ["E-mail 1 - Type", "E-mail 1 - Value", "E-mail 2 - Type", "E-mail 2 - Value"]

    values = apply(header, ["Work", "work@x.io", "* Home", "home@x.io"])

    assert texts(values, "email") == ["home@x.io", "work@x.io"]


def test_it_puts_primary_emails_before_typed_ones_and_secondary_ones_last():
    header = ["Secondary Email", "Email Home", "Email Work", "Primary Email"]

    values = apply(header, ["s@x.io", "h@x.io", "w@x.io", "p@x.io"])

    assert texts(values, "email") == ["p@x.io", "h@x.io", "w@x.io", "s@x.io"]


def test_it_does_not_split_a_phone_on_commas():
    values = apply(["Phone"], ["1,919,555,0001"])

    assert texts(values, "phone") == ["1,919,555,0001"]


# --- tags -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, tags",
    [
        ("vip, customer", ["vip", "customer"]),
        ("vip;customer", ["vip", "customer"]),
        ("vip|customer", ["vip", "customer"]),
        ("* myContacts ::: Friends ::: * starred", ["Friends"]),
        ("* My Contacts ::: Test", ["Test"]),
        ('"VIP","Spring Sale"', ["VIP", "Spring Sale"]),
        ("  padded  ;; ,", ["padded"]),
        ("VIP, vip, Vip", ["VIP"]),
        ("* Friends", []),
        ("*VIP*", ["*VIP*"]),
    ],
)
def test_it_splits_a_tags_cell_into_one_candidate_per_tag(cell, tags):
    values = apply(["Email", "Tags"], ["a@x.io", cell])

    assert texts(values, "tags") == tags
    assert all(column == "Tags" for column, _ in values.get("tags", []))


def test_it_collects_tags_from_every_tag_column():
    values = apply(["Labels", "Categories"], ["a ::: b", "b;c"])

    assert values["tags"] == [("Labels", "a"), ("Labels", "b"), ("Categories", "c")]


# --- addresses ------------------------------------------------------------------------------------

ADDRESS_HEADER = [
    "Business Street",
    "Business City",
    "Business Postal Code",
    "Home Street",
    "Home City",
    "Home Postal Code",
    "Country",
]


def test_it_takes_the_home_address_when_home_and_business_are_both_complete():
    values = apply(ADDRESS_HEADER, ["1 Work Rd", "Raleigh", "27601", "2 Home Ln", "Durham", "27701", "US"])

    assert values["address"] == [("Home Street", "2 Home Ln")]
    assert values["city"] == [("Home City", "Durham")]
    assert values["zip"] == [("Home Postal Code", "27701")]
    assert values["country"] == [("Country", "US")]


def test_it_takes_the_business_address_when_the_home_one_is_incomplete_and_never_mixes_them():
    values = apply(ADDRESS_HEADER, ["1 Work Rd", "Raleigh", "27601", "", "Durham", "", ""])

    assert values["address"] == [("Business Street", "1 Work Rd")]
    assert values["city"] == [("Business City", "Raleigh")]
    assert values["zip"] == [("Business Postal Code", "27601")]
    assert "country" not in values


def test_it_keeps_the_fullest_address_when_none_is_complete():
    values = apply(ADDRESS_HEADER, ["", "Raleigh", "27601", "", "Durham", "", ""])

    assert values["city"] == [("Business City", "Raleigh")]
    assert values["zip"] == [("Business Postal Code", "27601")]
    assert "address" not in values


def test_it_joins_street_lines_and_a_po_box_in_order():
    header = ["Home Address 2", "Home Address", "Home Address PO Box", "Home City"]

    values = apply(header, ["Apt 4", "2 Home Ln", "PO Box 9", "Durham"])

    assert values["address"] == [("Home Address + Home Address 2 + Home Address PO Box", "2 Home Ln, Apt 4, PO Box 9")]


def test_it_uses_googles_formatted_address_only_when_the_street_is_empty():
    header = ["Address 1 - Formatted", "Address 1 - Street", "Address 1 - City"]
    plan = build_plan(header)

    with_street = plan.apply(SourceRow(2, ["1 Main St\nDurham NC", "1 Main St", "Durham"]))
    without = plan.apply(SourceRow(3, ["1 Main St\nDurham NC\n", "", ""]))

    assert with_street.values["address"] == [("Address 1 - Street", "1 Main St")]
    assert without.values["address"] == [("Address 1 - Formatted", "1 Main St, Durham NC")]


def test_it_prefers_googles_first_complete_address():
    header = ["Address 1 - Street", "Address 1 - City", "Address 2 - Street", "Address 2 - City"]

    incomplete_first = apply(header, ["", "Raleigh", "2 Home Ln", "Durham"])
    both = apply(header, ["1 Work Rd", "Raleigh", "2 Home Ln", "Durham"])

    assert texts(incomplete_first, "city") == ["Durham"]
    assert texts(both, "city") == ["Raleigh"]


# --- plans: overrides and custom columns ------------------------------------------------------------


def test_it_lets_an_override_by_header_name_change_or_ignore_a_column():
    plan = build_plan(["Phone", "Email", "Ref"], overrides={"Ref": "external_id", "Email": None})

    assert plan.mapping == {0: "phone", 2: "external_id"}


def test_it_treats_an_empty_override_as_ignore():
    assert build_plan(["Phone", "Email"], overrides={"Email": ""}).mapping == {0: "phone"}


def test_it_accepts_override_keys_by_index_and_by_name_in_any_case():
    plan = build_plan(["Phone", "Mystery", "Other"], overrides={"1": "email", "other": "notes"})

    assert plan.mapping == {0: "phone", 1: "email", 2: "notes"}


def test_it_applies_a_name_override_to_every_column_of_that_name_and_an_index_override_to_one():
    plan = build_plan(["Phone", "x", "x"], overrides={"x": "tags", "2": "notes"})

    assert plan.mapping == {0: "phone", 1: "tags", 2: "notes"}


def test_it_maps_an_override_into_the_phone_priority_of_its_header():
    plan = build_plan(["Handynummer", "Home Phone"], overrides={"Handynummer": "phone"})

    values = plan.apply(SourceRow(2, ["h1", "h2"])).values

    assert texts(values, "phone") == ["h1", "h2"]


def test_it_refuses_an_unknown_target_and_lists_the_valid_ones():
    with pytest.raises(MappingError) as caught:
        build_plan(["Phone", "Ref"], overrides={"Ref": "externalid"})

    message = str(caught.value)
    assert "'Ref'" in message and "'externalid'" in message
    assert "external_id" in message and "first_name" in message and "custom.<key>" in message


def test_it_refuses_a_custom_target_with_an_invalid_key():
    with pytest.raises(MappingError, match="custom field 'shoe size'"):
        build_plan(["Phone", "Size"], overrides={"Size": "custom.shoe size"})


def test_it_accepts_a_custom_target_and_a_canonical_target_in_any_case():
    plan = build_plan(["Phone", "Size", "Mail"], overrides={"Size": "custom.shoeSize", "Mail": " EMAIL "})

    assert plan.mapping == {0: "phone", 1: "custom.shoeSize", 2: "email"}


def test_it_refuses_an_override_for_a_column_the_file_does_not_have():
    with pytest.raises(MappingError) as caught:
        build_plan(["Phone", "Email"], overrides={"Phon": "phone"})

    assert "'Phon'" in str(caught.value) and "'Phone', 'Email'" in str(caught.value)


def test_it_refuses_an_override_index_out_of_range():
    with pytest.raises(MappingError, match="column 5, but the file has 2 column"):
        build_plan(["Phone", "Email"], overrides={"5": "notes"})


def test_it_maps_unmapped_headers_to_custom_fields_only_when_asked():
    header = ["Email", "Shoe Size", "shoe-size", "2nd Pet", "Société", "", "電話", "Fax"]

    assert build_plan(header).mapping == {0: "email"}
    assert build_plan(header, custom_unmapped=True).mapping == {
        0: "email",
        1: "custom.shoe_size",
        2: "custom.shoe_size_2",
        3: "custom.field_2nd_pet",
        4: "custom.societe",
        6: "custom.column_7",
        7: "custom.fax",
    }


def test_it_keeps_custom_slugs_within_50_characters_even_when_deduplicated():
    header = ["Email", "A" * 80, "a" * 80]

    mapping = build_plan(header, custom_unmapped=True).mapping

    assert mapping[1] == "custom." + "a" * 50
    assert mapping[2] == "custom." + "a" * 48 + "_2"


def test_it_does_not_turn_google_type_columns_or_ignored_columns_into_custom_fields():
    header = ["Phone 1 - Type", "Phone 1 - Value", "Nickname", "Hobby"]

    plan = build_plan(header, custom_unmapped=True, overrides={"Hobby": None})

    assert plan.mapping == {1: "phone", 2: "custom.nickname"}


def test_it_does_not_reuse_a_custom_key_that_a_column_already_names():
    plan = build_plan(["Email", "custom.nickname", "Nickname"], custom_unmapped=True)

    assert plan.mapping == {0: "email", 1: "custom.nickname", 2: "custom.nickname_2"}


# --- headerless files -------------------------------------------------------------------------------


def test_it_maps_a_headerless_single_column_of_phones():
    plan = build_plan(["(919) 555-0001"], has_header=False, sample=[["19195550002.0"], ["1.9195550003E+10"]])

    assert plan.mapping == {0: "phone"}
    assert plan.describe() == [{"index": 0, "header": "column 1", "target": "phone"}]
    assert plan.apply(SourceRow(1, ["(919) 555-0001"])).values == {"phone": [("column 1", "(919) 555-0001")]}


def test_it_maps_a_headerless_single_column_of_emails():
    assert build_plan(["ann@example.com"], has_header=False).mapping == {0: "email"}


def test_it_maps_headerless_columns_by_what_their_values_look_like():
    rows = [["Smith", "ann@x.io", "Ann", "919-555-0001", "27601"], ["Jones", "", "Bob", "919-555-0002", "27701"]]

    plan = build_plan(rows[0], has_header=False, sample=[SourceRow(2, rows[1])])

    assert plan.mapping == {0: "first_name", 1: "email", 2: "last_name", 3: "phone"}


def test_it_maps_a_single_headerless_name_column_with_spaces_to_the_display_name():
    plan = build_plan(["Ann Smith", "+1 919 555 0001"], has_header=False, sample=[["Bob Jones", "+1 919 555 0002"]])

    assert plan.mapping == {0: "display_name", 1: "phone"}


def test_it_keys_headerless_overrides_by_position_only():
    plan = build_plan(["Ann", "+1 919 555 0001"], has_header=False, overrides={"0": "company"})

    assert plan.mapping == {0: "company", 1: "phone"}
    with pytest.raises(MappingError, match="no header row"):
        build_plan(["Ann", "+1 919 555 0001"], has_header=False, overrides={"Ann": "company"})


def test_it_explains_a_headerless_file_without_a_phone_or_email_column():
    plan = build_plan(["Ann", "Smith"], has_header=False)

    with pytest.raises(MappingError) as caught:
        plan.require_contact_column()

    assert "no column looks like a phone or email" in str(caught.value)
    assert "column 1 ('Ann'), column 2 ('Smith')" in str(caught.value)


# --- plan output ---------------------------------------------------------------------------------------


def test_it_describes_every_column_with_its_target():
    plan = build_plan(["Email", "Phone 1 - Type", "Phone 1 - Value", ""])

    assert plan.describe() == [
        {"index": 0, "header": "Email", "target": "email"},
        {"index": 1, "header": "Phone 1 - Type", "target": None},
        {"index": 2, "header": "Phone 1 - Value", "target": "phone"},
        {"index": 3, "header": "column 4", "target": None},
    ]


def test_it_requires_a_phone_or_email_column_and_lists_the_headers():
    plan = build_plan(["First Name", "Last Name", "Fax"])

    with pytest.raises(MappingError) as caught:
        plan.require_contact_column()

    message = str(caught.value)
    assert message.startswith("no column looks like a phone or email")
    assert "'First Name', 'Last Name', 'Fax'" in message


def test_it_accepts_a_plan_with_only_an_email_column():
    build_plan(["Name", "Email"]).require_contact_column()


def test_it_says_when_the_header_row_looks_like_data():
    plan = build_plan(["919-555-0001", "Ann"])

    with pytest.raises(MappingError, match="has_header=false"):
        plan.require_contact_column()


def test_it_reads_short_rows_and_ignores_extra_cells():
    plan = build_plan(["Email", "First Name", "Tags"])

    short = plan.apply(SourceRow(7, ["a@x.io"]))
    long = plan.apply(SourceRow(8, ["b@x.io", "Bob", "vip", "extra", "more"]))

    assert short.line == 7 and short.values == {"email": [("Email", "a@x.io")]}
    assert long.values == {
        "email": [("Email", "b@x.io")],
        "first_name": [("First Name", "Bob")],
        "tags": [("Tags", "vip")],
    }


def test_it_labels_candidates_with_the_stripped_header_text():
    values = apply([" E-mail Address ", "\ufeffFirst Name"], ["a@x.io", "Ann"])

    assert values == {"email": [("E-mail Address", "a@x.io")], "first_name": [("First Name", "Ann")]}


def test_it_skips_blank_cells():
    assert apply(["Email", "Phone", "City"], ["  ", "", "\t"]) == {}


# --- corpus ----------------------------------------------------------------------------------------------


def read_header(path):
    """Return the first record of a corpus CSV, decoded as that file needs."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        for encoding in ("utf-8-sig", "shift_jis", "cp1252"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    delimiter = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
    return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


CORPUS_TARGETS = {
    "die_books-ISO-8859-1.csv": {"display_name"},
    "die_books-mac-cr.csv": {"display_name"},
    "roundcube_all_bom.csv": {
        "display_name",
        "first_name",
        "last_name",
        "company",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "gender",
        "birthday",
        "notes",
        "tags",
    },
    "roundcube_gmail_legacy.csv": {
        "display_name",
        "first_name",
        "last_name",
        "birthday",
        "gender",
        "notes",
        "tags",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "company",
    },
    "tb_csv_semicolon.csv": {"display_name", "first_name", "last_name", "email"},
    "tb_quote.csv": {
        "first_name",
        "last_name",
        "display_name",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "company",
        "birthday",
        "notes",
    },
    "tb_shiftjis_addressbook.csv": {
        "first_name",
        "last_name",
        "display_name",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "company",
        "birthday",
        "notes",
    },
    "tb_tab_comma_mixed.csv": set(),
    "tb_utf16_addressbook.csv": {
        "first_name",
        "last_name",
        "display_name",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "zip",
        "country",
        "company",
        "birthday",
        "notes",
    },
}


@pytest.mark.skipif(not DATA.exists(), reason="the shared real-world corpus is not on this machine")
def test_it_maps_the_header_of_every_corpus_csv():
    files = sorted((DATA / "csv").glob("*.csv"))
    assert sorted(p.name for p in files) == sorted(CORPUS_TARGETS)

    for path in files:
        found = set(detect_mapping(read_header(path)).values())
        assert found == CORPUS_TARGETS[path.name], path.name


@pytest.mark.skipif(not DATA.exists(), reason="the shared real-world corpus is not on this machine")
def test_it_maps_the_google_legacy_corpus_row_by_type():
    path = DATA / "csv" / "roundcube_gmail_legacy.csv"
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8"), newline="")))
    plan = build_plan(rows[0])

    values = plan.apply(SourceRow(2, rows[1])).values

    # Pager and fax "numbers" are dropped; the Mobile one leads, then Main, Work, Home.
    assert texts(values, "phone") == ["mobile", "mainphone", "workphone", "homephone"]
    assert texts(values, "email")[0] == "home@aaa.pl"  # typed `* Home`: Google's primary
    assert texts(values, "tags") == ["Test"]
    assert texts(values, "address") == ["home_street, home_pobox"]
    assert texts(values, "city") == ["home_city"]


@pytest.mark.skipif(not DATA.exists(), reason="the shared real-world corpus is not on this machine")
def test_it_explains_the_corpus_file_whose_first_row_is_data():
    plan = build_plan(read_header(DATA / "csv" / "tb_tab_comma_mixed.csv"))

    with pytest.raises(MappingError, match="'1@host.invalid', which is a value, not a column name"):
        plan.require_contact_column()
