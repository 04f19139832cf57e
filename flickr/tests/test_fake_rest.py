"""/services/rest/: formats, the order of checks and the in-band error codes (FLICKR-API.md §2, §7.2)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import requests
from requests_oauthlib import OAuth1

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr, SandboxServer
from flickr.fake.testing import SandboxClient


def parse_xml(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314 - the answer of our own sandbox, not untrusted input


def client(
    server: SandboxServer, app: FakeFlickr | None = None, perms: str | None = None, **kwargs: str
) -> SandboxClient:
    token = secret = None
    if app is not None and perms is not None:
        token, secret, _ = app.state.demo_token(perms)
    return SandboxClient(server.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, token, secret, **kwargs)


def unsigned(server: SandboxServer, **params: str) -> requests.Response:
    return requests.get(f"{server.url}/services/rest/", params=params, timeout=5)


# ---------------------------------------------------------------- formats


def test_xml_is_the_default_format(server: SandboxServer) -> None:
    answer = unsigned(server, method="flickr.test.echo", api_key=SANDBOX_CONSUMER_KEY, foo="bar")

    rsp = parse_xml(answer.content)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert answer.text.startswith('<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="ok">')
    assert rsp.findtext("foo") == "bar"


def test_json_without_nojsoncallback_is_jsonp(server: SandboxServer) -> None:
    answer = unsigned(server, method="flickr.test.echo", api_key=SANDBOX_CONSUMER_KEY, format="json")

    assert answer.text.startswith("jsonFlickrApi({")
    assert answer.text.endswith("})")
    assert json.loads(answer.text[len("jsonFlickrApi(") : -1])["stat"] == "ok"


def test_jsoncallback_renames_the_wrapper(server: SandboxServer) -> None:
    answer = unsigned(
        server, method="flickr.test.echo", api_key=SANDBOX_CONSUMER_KEY, format="json", jsoncallback="handle"
    )

    assert answer.text.startswith("handle({")


def test_nojsoncallback_gives_plain_json_in_flickrs_mapping(server: SandboxServer) -> None:
    answer = unsigned(
        server,
        method="flickr.test.echo",
        api_key=SANDBOX_CONSUMER_KEY,
        format="json",
        nojsoncallback="1",
        title="a/b",
    )

    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {
        "method": {"_content": "flickr.test.echo"},
        "api_key": {"_content": SANDBOX_CONSUMER_KEY},
        "format": {"_content": "json"},
        "nojsoncallback": {"_content": "1"},
        "title": {"_content": "a/b"},
        "stat": "ok",
    }
    assert '"a\\/b"' in answer.text  # Flickr escapes slashes


def test_an_unknown_format_is_error_111_in_xml(server: SandboxServer) -> None:
    answer = unsigned(server, method="flickr.test.echo", api_key=SANDBOX_CONSUMER_KEY, format="yaml")

    err = parse_xml(answer.content).find("err")
    assert answer.status_code == 200
    assert err.attrib == {"code": "111", "msg": 'Format "yaml" not found'}


def test_errors_are_in_band_with_http_200_in_every_format(server: SandboxServer) -> None:
    as_json = unsigned(server, method="flickr.test.echo", api_key="nope", format="json", nojsoncallback="1")
    as_xml = unsigned(server, method="flickr.test.echo", api_key="nope")

    assert as_json.status_code == as_xml.status_code == 200
    assert as_json.json() == {
        "stat": "fail",
        "code": 100,
        "message": "Invalid API Key (Key has invalid format)",
    }
    assert as_xml.text == (
        '<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="fail">\n'
        '\t<err code="100" msg="Invalid API Key (Key has invalid format)" />\n</rsp>\n'
    )


# ---------------------------------------------------------------- keys, methods, signatures


def test_an_expired_key_answers_100_key_has_expired(app: FakeFlickr, server: SandboxServer) -> None:
    app.state.expire_key(SANDBOX_CONSUMER_KEY)

    answer = client(server).json("flickr.test.echo")

    assert answer == {"stat": "fail", "code": 100, "message": "Invalid API Key (Key has expired)"}


def test_an_unknown_method_is_112(server: SandboxServer) -> None:
    answer = client(server).json("flickr.photos.doesNotExist")

    assert answer == {"stat": "fail", "code": 112, "message": 'Method "flickr.photos.doesNotExist" not found'}


def test_a_catalogued_method_the_sandbox_lacks_says_so(server: SandboxServer) -> None:
    answer = client(server).json("flickr.galleries.getList", user_id="x")

    assert answer["code"] == 112
    assert "does not implement" in answer["message"]


def test_unsigned_calls_with_a_known_api_key_work_for_methods_without_login(server: SandboxServer) -> None:
    answer = unsigned(
        server,
        method="flickr.photos.search",
        api_key=SANDBOX_CONSUMER_KEY,
        tags="fog",
        format="json",
        nojsoncallback="1",
    )

    assert answer.json()["stat"] == "ok"
    assert all(p["ispublic"] == 1 for p in answer.json()["photos"]["photo"])


@pytest.mark.parametrize(
    ("where", "http_method"), [("auth_header", "POST"), ("query", "GET"), ("body", "POST")]
)
def test_signatures_are_checked_wherever_the_oauth_parameters_travel(
    app: FakeFlickr, server: SandboxServer, where: str, http_method: str
) -> None:
    signed = client(server, app, "read", signature_type=where)

    answer = signed.rest("flickr.test.login", http_method=http_method, format="json", nojsoncallback="1")

    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["id"] == app.state.demo_user.nsid


def test_a_tampered_signature_is_http_401_not_in_band(app: FakeFlickr, server: SandboxServer) -> None:
    signed = client(server, app, "read")
    prepared = requests.Request(
        "POST", signed.rest_url, data={"method": "flickr.test.login"}, auth=signed.auth
    ).prepare()
    header = prepared.headers["Authorization"]
    header = header.decode() if isinstance(header, bytes) else header
    prepared.headers["Authorization"] = header.replace('oauth_signature="', 'oauth_signature="AAAA')

    answer = requests.Session().send(prepared, timeout=5)

    assert answer.status_code == 401
    assert answer.text.startswith("oauth_problem=signature_invalid&debug_sbs=POST&http%3A%2F%2F127.0.0.1")
    assert "method%3Dflickr.test.login" in answer.text


def test_a_changed_argument_breaks_the_signature(app: FakeFlickr, server: SandboxServer) -> None:
    signed = client(server, app, "read")
    prepared = requests.Request(
        "POST", signed.rest_url, data={"method": "flickr.test.echo", "x": "1"}, auth=signed.auth
    ).prepare()
    prepared.body = "method=flickr.test.echo&x=2"
    prepared.headers["Content-Length"] = str(len(prepared.body))

    answer = requests.Session().send(prepared, timeout=5)

    assert answer.status_code == 401


def test_a_replayed_rest_call_is_refused(app: FakeFlickr, server: SandboxServer) -> None:
    signed = client(server, app, "read")
    prepared = requests.Request(
        "POST", signed.rest_url, data={"method": "flickr.test.null"}, auth=signed.auth
    ).prepare()

    with requests.Session() as session:
        assert session.send(prepared, timeout=5).status_code == 200
        replay = session.send(prepared, timeout=5)

    assert (replay.status_code, replay.text) == (401, "oauth_problem=nonce_used")


# ---------------------------------------------------------------- tokens and permissions


def test_a_revoked_token_answers_98(app: FakeFlickr, server: SandboxServer) -> None:
    token, secret = app.state.issue_access_token(
        consumer_key=SANDBOX_CONSUMER_KEY, nsid=app.state.users[1].nsid, perms="read"
    )
    signed = SandboxClient(server.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, token, secret)
    assert signed.json("flickr.test.login")["stat"] == "ok"

    app.state.revoke_token(token)

    assert signed.json("flickr.test.login") == {"stat": "fail", "code": 98, "message": "Invalid auth token"}


def test_a_token_flickr_never_issued_answers_98(server: SandboxServer) -> None:
    signed = SandboxClient(
        server.url,
        SANDBOX_CONSUMER_KEY,
        SANDBOX_CONSUMER_SECRET,
        "72157000000000000-0000000000000000",
        "0" * 16,
    )

    assert signed.json("flickr.test.login")["code"] == 98


def test_a_login_method_without_a_token_answers_99_none_granted(server: SandboxServer) -> None:
    answer = client(server).json("flickr.test.login")

    assert answer == {
        "stat": "fail",
        "code": 99,
        "message": "Insufficient permissions. Method requires read privileges; none granted.",
    }


def test_a_read_token_on_a_write_method_answers_99_read_granted(
    app: FakeFlickr, server: SandboxServer
) -> None:
    answer = client(server, app, "read").json("flickr.photos.addTags", photo_id="1", tags="x")

    assert answer["code"] == 99
    assert answer["message"] == "Insufficient permissions. Method requires write privileges; read granted."


def test_a_write_token_cannot_delete(app: FakeFlickr, server: SandboxServer) -> None:
    answer = client(server, app, "write").json("flickr.photos.delete", photo_id="1")

    assert answer["message"] == "Insufficient permissions. Method requires delete privileges; write granted."


def test_checks_run_in_flickrs_order(app: FakeFlickr, server: SandboxServer) -> None:
    bad_key = SandboxClient(server.url, "0" * 32, "0" * 16)
    wrong_secret = SandboxClient(server.url, SANDBOX_CONSUMER_KEY, "0" * 16)

    assert bad_key.rest("flickr.nope", format="yaml").text.count('code="111"') == 1
    assert bad_key.json("flickr.nope")["code"] == 100
    assert wrong_secret.json("flickr.nope")["code"] == 112
    assert wrong_secret.rest("flickr.test.echo").status_code == 401
    assert client(server, app, "read").json("flickr.photos.getInfo")["code"] == 1


def test_a_missing_required_argument_gets_the_methods_own_error(
    app: FakeFlickr, server: SandboxServer
) -> None:
    reader = client(server, app, "write")

    assert reader.json("flickr.photos.getInfo") == {"stat": "fail", "code": 1, "message": "Photo not found."}
    assert reader.json("flickr.people.getPhotos")["message"] == "Required arguments missing"
    assert reader.json("flickr.photosets.create", primary_photo_id="1")["message"] == "No title specified"


def test_check_token_tells_the_perms_and_the_person(app: FakeFlickr, server: SandboxServer) -> None:
    token, _, nsid = app.state.demo_token("write")

    answer = client(server, app, "write").json("flickr.auth.oauth.checkToken")

    assert answer["oauth"]["token"] == {"_content": token}
    assert answer["oauth"]["perms"] == {"_content": "write"}
    assert answer["oauth"]["user"]["nsid"] == nsid


def test_check_token_must_be_signed(server: SandboxServer) -> None:
    answer = unsigned(
        server,
        method="flickr.auth.oauth.checkToken",
        api_key=SANDBOX_CONSUMER_KEY,
        oauth_token="x",
        format="json",
        nojsoncallback="1",
    )

    assert answer.json() == {"stat": "fail", "code": 97, "message": "Missing signature"}


# ---------------------------------------------------------------- reflection


def test_reflection_lists_every_catalogued_method(server: SandboxServer) -> None:
    methods = [
        m["_content"] for m in client(server).json("flickr.reflection.getMethods")["methods"]["method"]
    ]

    assert len(methods) >= 200
    assert {"flickr.photos.search", "flickr.photos.upload.checkTickets", "flickr.groups.leave"} <= set(
        methods
    )


def test_method_info_has_three_siblings_with_flickrs_mixed_types(server: SandboxServer) -> None:
    info = client(server).json("flickr.reflection.getMethodInfo", method_name="flickr.photos.addTags")

    assert info["method"]["needslogin"] == 1
    assert info["method"]["requiredperms"] == "2"
    assert info["arguments"]["argument"][0] == {
        "name": "api_key",
        "optional": 0,
        "_content": info["arguments"]["argument"][0]["_content"],
    }
    assert {"name": "photo_id", "optional": "0"}.items() <= info["arguments"]["argument"][1].items()
    codes = [e["code"] for e in info["errors"]["error"]]
    assert codes[:2] == ["1", "2"] and 99 in codes


def test_method_info_for_an_unknown_method_is_error_1(server: SandboxServer) -> None:
    answer = client(server).json("flickr.reflection.getMethodInfo", method_name="flickr.nope")

    assert answer == {"stat": "fail", "code": 1, "message": "Method not found"}


def test_posting_to_rest_without_the_trailing_slash_works(app: FakeFlickr, server: SandboxServer) -> None:
    token, secret, _ = app.state.demo_token("read")
    auth = OAuth1(SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, token, secret)

    answer = requests.post(
        f"{server.url}/services/rest", data={"method": "flickr.test.login"}, auth=auth, timeout=5
    )

    assert answer.status_code == 200
    assert parse_xml(answer.content).find("user").get("id") == app.state.demo_user.nsid
