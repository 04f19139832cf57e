"""/services/upload/ and /services/replace/: XML answers, file checks and error codes (FLICKR-API.md §3)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl

import pytest
import requests
from requests_oauthlib import OAuth1

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr, SandboxServer
from flickr.fake.models import User
from flickr.fake.testing import SandboxClient, tiny_jpeg, tiny_png


def parse_xml(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314 - the answer of our own sandbox, not untrusted input


@pytest.fixture
def app() -> FakeFlickr:
    return FakeFlickr(seed=1, upload_max_bytes=4096)


def as_user(server: SandboxServer, app: FakeFlickr, user: User, perms: str = "write") -> SandboxClient:
    token, secret = app.state.issue_access_token(
        consumer_key=SANDBOX_CONSUMER_KEY, nsid=user.nsid, perms=perms
    )
    return SandboxClient(server.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, token, secret)


@pytest.fixture
def uploader(server: SandboxServer, app: FakeFlickr) -> SandboxClient:
    return as_user(server, app, app.state.demo_user)


def rsp(answer: requests.Response) -> ET.Element:
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/xml")
    return parse_xml(answer.content)


def error_of(answer: requests.Response) -> tuple[str, str]:
    err = rsp(answer).find("err")
    assert err is not None, answer.text
    return err.get("code", ""), err.get("msg", "")


def test_an_upload_is_found_by_later_searches(uploader: SandboxClient) -> None:
    answer = uploader.upload(
        {"title": "Harbour crane", "tags": 'crane "night shift"', "is_public": "0", "is_friend": "1"},
        tiny_jpeg(64, 48),
    )

    photo_id = rsp(answer).findtext("photoid")
    found = uploader.json("flickr.photos.search", user_id="me", tags="nightshift", extras="o_dims")["photos"]
    assert [p["id"] for p in found["photo"]] == [photo_id]
    photo = found["photo"][0]
    assert photo["title"] == "Harbour crane"
    assert (photo["ispublic"], photo["isfriend"], photo["isfamily"]) == (0, 1, 0)
    assert (photo["o_width"], photo["o_height"]) == ("64", "48")


def test_an_upload_answers_xml_whatever_format_asks(uploader: SandboxClient) -> None:
    answer = uploader.upload({"format": "json", "nojsoncallback": "1"}, tiny_png())

    assert rsp(answer).attrib == {"stat": "ok"}


def test_a_public_upload_shows_up_for_everyone(server: SandboxServer, uploader: SandboxClient) -> None:
    photo_id = rsp(uploader.upload({"title": "For all"}, tiny_png())).findtext("photoid")

    anonymous = SandboxClient(server.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET)
    recent = anonymous.json("flickr.photos.getRecent", per_page="1")

    assert recent["photos"]["photo"][0]["id"] == photo_id


@pytest.mark.parametrize(
    ("photo", "code", "message"),
    [
        (None, "2", "No photo specified"),
        (b"", "4", "Filesize was zero"),
        (b"%PDF-1.4 definitely not a photo", "5", "Filetype was not recognised"),
        (tiny_jpeg()[:-2], "3", "General upload failure"),
        (b"\xff\xd8\xff" + b"\x00" * 5000, "8", "Filesize was too large"),
    ],
)
def test_bad_files_get_flickrs_upload_codes(
    uploader: SandboxClient, photo: bytes | None, code: str, message: str
) -> None:
    assert error_of(uploader.upload({"title": "x"}, photo)) == (code, message)


@pytest.mark.parametrize(
    "magic",
    [
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        b"RIFF\x10\x00\x00\x00WEBPVP8 ",
        b"II*\x00\x08\x00\x00\x00",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00",
        b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00",
    ],
)
def test_other_image_and_video_formats_are_recognised(uploader: SandboxClient, magic: bytes) -> None:
    assert rsp(uploader.upload({"title": "format"}, magic)).findtext("photoid")


def test_a_duplicate_is_refused_only_when_dedup_check_asks(uploader: SandboxClient) -> None:
    image = tiny_png(3, 3)
    first = rsp(uploader.upload({}, image)).findtext("photoid")

    again = uploader.upload({}, image)
    checked = uploader.upload({"dedup_check": "1"}, image)

    assert rsp(again).findtext("photoid") not in (None, first)
    assert error_of(checked) == ("9", "Duplicate photo/video detected")
    assert rsp(checked).findtext("duplicate_photo_id") == first


def test_the_account_limit_is_error_6(app: FakeFlickr, uploader: SandboxClient) -> None:
    owned = sum(1 for p in app.state.library.photos.values() if p.owner == app.state.demo_user.nsid)
    app.state.set_upload_limit(app.state.demo_user.nsid, owned + 1)

    assert rsp(uploader.upload({}, tiny_png())).findtext("photoid")
    assert error_of(uploader.upload({}, tiny_png(2, 3))) == (
        "6",
        "Upload limit reached. For more info, visit flickr.com/pro",
    )


def test_uploading_needs_a_write_token(server: SandboxServer, app: FakeFlickr) -> None:
    reader = as_user(server, app, app.state.demo_user, perms="read")
    consumer_only = SandboxClient(server.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET)

    assert error_of(reader.upload({}, tiny_png())) == (
        "99",
        "Insufficient permissions. Method requires write privileges; read granted.",
    )
    assert error_of(consumer_only.upload({}, tiny_png()))[0] == "99"


def test_the_signature_covers_every_field_but_the_photo(uploader: SandboxClient) -> None:
    signed_fields = {"title": "Signed"}
    dummy = requests.Request(
        "POST", f"{uploader.base_url}/services/upload/", data=signed_fields, auth=uploader.auth
    ).prepare()

    sneaky = requests.post(
        f"{uploader.base_url}/services/upload/",
        data={"title": "Signed", "is_public": "0"},  # a field the signature never saw
        files={"photo": ("a.png", tiny_png())},
        headers={"Authorization": dummy.headers["Authorization"]},
        timeout=5,
    )

    assert sneaky.status_code == 401
    assert sneaky.text.startswith("oauth_problem=signature_invalid&debug_sbs=POST&")


def test_oauth_parameters_may_travel_as_multipart_fields(uploader: SandboxClient) -> None:
    url = f"{uploader.base_url}/services/upload/"
    keys = uploader.auth.client
    in_body = OAuth1(
        keys.client_key,
        keys.client_secret,
        keys.resource_owner_key,
        keys.resource_owner_secret,
        signature_type="body",
    )
    signed = requests.Request("POST", url, data={"title": "In the body"}, auth=in_body).prepare()
    body = signed.body.decode() if isinstance(signed.body, bytes) else signed.body

    answer = requests.post(url, data=dict(parse_qsl(body)), files={"photo": ("a.png", tiny_png())}, timeout=5)

    photo_id = rsp(answer).findtext("photoid")
    assert uploader.json("flickr.photos.getInfo", photo_id=photo_id)["photo"]["title"] == {
        "_content": "In the body"
    }


def test_an_async_upload_hands_out_a_ticket_that_check_tickets_resolves(uploader: SandboxClient) -> None:
    good = rsp(uploader.upload({"async": "1", "title": "later"}, tiny_png())).findtext("ticketid")
    bad = rsp(uploader.upload({"async": "1"}, b"not an image at all")).findtext("ticketid")

    status = uploader.json("flickr.photos.upload.checkTickets", tickets=f"{good},{bad},12")["uploader"][
        "ticket"
    ]

    assert status[0]["complete"] == 1 and status[0]["id"] == good
    assert uploader.json("flickr.photos.getInfo", photo_id=status[0]["photoid"])["photo"]["title"] == {
        "_content": "later"
    }
    assert status[1] == {"id": bad, "complete": 2}
    assert status[2] == {"id": "12", "invalid": 1}


# ---------------------------------------------------------------- replace


def test_replacing_a_photo_changes_its_secrets(uploader: SandboxClient) -> None:
    photo_id = rsp(uploader.upload({"title": "v1"}, tiny_jpeg())).findtext("photoid")
    before = uploader.json("flickr.photos.getInfo", photo_id=photo_id)["photo"]

    replaced = rsp(uploader.replace({"photo_id": photo_id}, tiny_png(5, 4))).find("photoid")
    after = uploader.json("flickr.photos.getInfo", photo_id=photo_id)["photo"]

    assert replaced.text == photo_id
    assert replaced.get("secret") == after["secret"] != before["secret"]
    assert replaced.get("originalsecret") == after["originalsecret"]
    assert after["title"] == {"_content": "v1"}
    assert after["originalformat"] == "png"


def test_replace_refuses_photos_that_are_missing_or_someone_elses(
    app: FakeFlickr, uploader: SandboxClient
) -> None:
    not_mine = next(p for p in app.state.library.photos.values() if p.owner != app.state.demo_user.nsid)

    assert error_of(uploader.replace({"photo_id": "1"}, tiny_png())) == ("1", "Photo not found")
    assert error_of(uploader.replace({"photo_id": not_mine.id}, tiny_png())) == ("1", "Photo not found")


def test_replace_checks_the_file_like_upload(uploader: SandboxClient) -> None:
    photo_id = rsp(uploader.upload({}, tiny_jpeg())).findtext("photoid")

    assert error_of(uploader.replace({"photo_id": photo_id}, None))[0] == "2"
    assert error_of(uploader.replace({"photo_id": photo_id}, b""))[0] == "4"
    assert error_of(uploader.replace({"photo_id": photo_id}, b"text"))[0] == "5"


def test_replace_is_for_pro_accounts(server: SandboxServer, app: FakeFlickr) -> None:
    free = next(u for u in app.state.users if not u.ispro)
    own = next(p for p in app.state.library.photos.values() if p.owner == free.nsid)

    answer = as_user(server, app, free).replace({"photo_id": own.id}, tiny_png())

    assert error_of(answer) == ("1", "Not a pro account")
