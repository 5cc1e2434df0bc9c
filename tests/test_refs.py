"""Offer references: accepted forms and junk (PROTOCOL.md §6)."""

import pytest

from ali1688spider.aop import InvalidOfferRef, offer_url, parse_offer_ref

ACCEPTED = [
    ("610784549587", "610784549587"),
    ("  610784549587\n", "610784549587"),
    ("123456789", "123456789"),
    ("123456789012345", "123456789012345"),
    ("https://detail.1688.com/offer/610784549587.html", "610784549587"),
    ("http://detail.1688.com/offer/610784549587.html", "610784549587"),
    ("https://detail.1688.com/offer/610784549587.html?spm=a26352.13672862&sk=consign", "610784549587"),
    ("https://detail.1688.com/offer/610784549587.html#skuList", "610784549587"),
    ("https://m.1688.com/offer/626644646828.html", "626644646828"),
    ("https://m.1688.com/offer/626644646828.html?offerId=1", "626644646828"),
    ("detail.1688.com/offer/610784549587.html", "610784549587"),
    ("HTTPS://DETAIL.1688.COM/offer/610784549587.html", "610784549587"),
]

JUNK = [
    ("", "empty"),
    ("   ", "empty"),
    ("12345", "9-15 digits"),
    ("1234567890123456", "9-15 digits"),
    ("012345678901", "9-15 digits"),
    ("61078454958a", "neither"),
    ("-610784549587", "neither"),
    ("610784549587.0", "neither"),
    ("not an id", "neither"),
    ("https://example.com/offer/610784549587.html", "not a 1688.com URL"),
    ("https://detail.1688.com.evil.com/offer/610784549587.html", "not a 1688.com URL"),
    ("https://detail.1688.com/company/610784549587.html", "not an offer page"),
    ("https://detail.1688.com/offer/12.html", "9-15 digits"),
    ("ftp://detail.1688.com/offer/610784549587.html", "only http"),
    ("https://[broken/offer/1.html", "not a valid URL"),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_forms(text, expected):
    assert parse_offer_ref(text) == expected


@pytest.mark.parametrize(("text", "says"), JUNK)
def test_junk_gets_a_clear_error(text, says):
    with pytest.raises(InvalidOfferRef) as caught:
        parse_offer_ref(text)
    assert says in str(caught.value)


def test_long_junk_is_shortened_in_the_message():
    with pytest.raises(InvalidOfferRef) as caught:
        parse_offer_ref("x" * 500)
    assert len(str(caught.value)) < 200


ENCRYPTED = [  # (as pasted, as sent): the published example and the forms it may take
    ("ipyyvQsdS1fd/NACddd1Hg==", "ipyyvQsdS1fd/NACddd1Hg=="),
    (" ipyyvQsdS1fd/NACddd1Hg==\n", "ipyyvQsdS1fd/NACddd1Hg=="),
    ("ipyyvQsdS1fd%2FNACddd1Hg%3D%3D", "ipyyvQsdS1fd/NACddd1Hg=="),
    ("ipyyvQsdS1fd_NACddd1Hg", "ipyyvQsdS1fd_NACddd1Hg"),
]


@pytest.mark.parametrize(("text", "sent"), ENCRYPTED)
def test_encrypted_ids_only_where_the_api_takes_them(text, sent):
    assert parse_offer_ref(text, open_ids=True) == sent
    with pytest.raises(InvalidOfferRef) as caught:
        parse_offer_ref(text)
    assert "api=fenxiao.info" in str(caught.value)


@pytest.mark.parametrize("text", [
    "abcdefghijklmnopqrstuvwx",  # one case of letters
    "ipyyvQsdS1fd/NACddd1Hg=",  # broken padding
    "ipyyvQsdS1fd/NA",  # too short
    "ipyyvQsdS1fd/NAC_dd1Hg==",  # two alphabets mixed
    "hello world, not an id",
])
def test_text_that_is_no_encrypted_id(text):
    with pytest.raises(InvalidOfferRef):
        parse_offer_ref(text, open_ids=True)


def test_an_encrypted_id_has_no_offer_page():
    assert offer_url("ipyyvQsdS1fd/NACddd1Hg==") == ""
