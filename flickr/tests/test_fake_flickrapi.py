"""The sandbox driven by the real, unmodified `flickrapi` client.

If flickrapi and the sandbox disagree, the sandbox is wrong: flickrapi has talked to the
real Flickr for years.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flickrapi
import flickrapi.auth
import pytest
from flickrapi.exceptions import FlickrError

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr, SandboxServer
from flickr.fake.testing import tiny_jpeg, tiny_png


@pytest.fixture
def app() -> FakeFlickr:
    return FakeFlickr(seed=1)


@pytest.fixture
def server(app: FakeFlickr, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    server = SandboxServer(app, port=0).start()
    # flickrapi keeps its OAuth URLs on the class; monkeypatch puts them back afterwards.
    oauth = flickrapi.auth.OAuthFlickrInterface
    monkeypatch.setattr(oauth, "REQUEST_TOKEN_URL", f"{server.url}/services/oauth/request_token")
    monkeypatch.setattr(oauth, "AUTHORIZE_URL", f"{server.url}/services/oauth/authorize")
    monkeypatch.setattr(oauth, "ACCESS_TOKEN_URL", f"{server.url}/services/oauth/access_token")
    yield server
    server.stop()


def sandbox_flickr(
    server: SandboxServer,
    *,
    token: flickrapi.auth.FlickrAccessToken | None = None,
    secret: str = SANDBOX_CONSUMER_SECRET,
    format: str = "parsed-json",
) -> flickrapi.FlickrAPI:
    flickr = flickrapi.FlickrAPI(
        SANDBOX_CONSUMER_KEY, secret, token=token, format=format, store_token=False, timeout=10
    )
    # Instance attributes: nothing leaks into other tests' FlickrAPI objects.
    flickr.REST_URL = f"{server.url}/services/rest/"
    flickr.UPLOAD_URL = f"{server.url}/services/upload/"
    flickr.REPLACE_URL = f"{server.url}/services/replace/"
    return flickr


def demo_access_token(app: FakeFlickr, perms: str) -> flickrapi.auth.FlickrAccessToken:
    token, secret, nsid = app.state.demo_token(perms)
    user = app.state.demo_user
    return flickrapi.auth.FlickrAccessToken(token, secret, perms, user.fullname, user.username, nsid)


def test_out_of_band_oauth_flow_ends_with_a_token_for_the_approving_person(
    app: FakeFlickr, server: SandboxServer
) -> None:
    flickr = sandbox_flickr(server)
    flickr.get_request_token(oauth_callback="oob")
    auth_url = flickr.auth_url(perms="write")
    request_token = flickr.flickr_oauth.resource_owner_key
    assert auth_url.startswith(f"{server.url}/services/oauth/authorize?oauth_token=")
    person = app.state.users[1]

    verifier = app.state.approve(request_token, person.nsid, "write")
    flickr.get_access_token(verifier)

    token = flickr.token_cache.token
    assert token.user_nsid == person.nsid
    assert token.username == person.username
    assert token.fullname == person.fullname
    assert flickr.test.login()["user"]["id"] == person.nsid
    assert flickr.token_valid(perms="write")


def test_parsed_json_call_returns_flickrs_json_shape(app: FakeFlickr, server: SandboxServer) -> None:
    flickr = sandbox_flickr(server, token=demo_access_token(app, "read"))

    found = flickr.photos.search(user_id="me", per_page=5, extras="url_m,date_taken")

    photos = found["photos"]
    assert found["stat"] == "ok"
    assert photos["page"] == 1 and photos["perpage"] == 5
    assert len(photos["photo"]) == 5
    assert all(p["owner"] == app.state.demo_user.nsid for p in photos["photo"])
    assert all("url_m" in p and "datetaken" in p for p in photos["photo"])


def test_etree_calls_page_through_a_users_photos(app: FakeFlickr, server: SandboxServer) -> None:
    flickr = sandbox_flickr(server, token=demo_access_token(app, "read"), format="etree")
    # flickrapi's own walk_user() calls Element.getchildren(), gone since Python 3.9, so
    # page by hand the way it would: follow the container's `pages` attribute.
    seen: list[str] = []
    page, pages = 1, 1
    while page <= pages:
        photos = flickr.people.getPhotos(user_id="me", per_page=7, page=page).find("photos")
        pages = int(photos.get("pages"))
        seen += [p.get("id") for p in photos.findall("photo")]
        page += 1

    person = flickr.people.getInfo(user_id=app.state.demo_user.nsid)
    own = [p for p in app.state.library.photos.values() if p.owner == app.state.demo_user.nsid]
    assert person.findtext("person/username") == app.state.demo_user.username
    assert sorted(seen) == sorted(p.id for p in own)


def test_flickr_errors_are_raised_with_their_code(app: FakeFlickr, server: SandboxServer) -> None:
    flickr = sandbox_flickr(server, token=demo_access_token(app, "read"))

    with pytest.raises(FlickrError) as not_found:
        flickr.photos.getInfo(photo_id="1")
    with pytest.raises(FlickrError) as too_weak:
        flickr.photos.addTags(photo_id="1", tags="x")

    assert not_found.value.code == 1
    assert too_weak.value.code == 99
    assert "requires write privileges; read granted" in str(too_weak.value)


def test_a_wrong_consumer_secret_fails_with_http_401(server: SandboxServer) -> None:
    flickr = sandbox_flickr(server, secret="0000000000000000")

    with pytest.raises(FlickrError, match="Status code 401"):
        flickr.get_request_token(oauth_callback="oob")


def test_upload_then_replace_through_flickrapi(
    app: FakeFlickr, server: SandboxServer, tmp_path: Path
) -> None:
    flickr = sandbox_flickr(server, token=demo_access_token(app, "write"), format="etree")
    jpeg = tmp_path / "harbour at dawn.jpg"
    jpeg.write_bytes(tiny_jpeg(32, 16))
    png = tmp_path / "replacement.png"
    png.write_bytes(tiny_png(4, 4))

    uploaded = flickr.upload(str(jpeg), tags='sandbox "first light"', is_public="0")
    photo_id = uploaded.findtext("photoid")
    replaced = flickr.replace(str(png), photo_id=photo_id)

    info = sandbox_flickr(server, token=demo_access_token(app, "read")).photos.getInfo(photo_id=photo_id)[
        "photo"
    ]
    # flickrapi sends the file's base name as the title when none is given.
    assert info["title"]["_content"] == "harbour at dawn.jpg"
    assert [t["raw"] for t in info["tags"]["tag"]] == ["sandbox", "first light"]
    assert info["visibility"]["ispublic"] == 0
    assert replaced.find("photoid").text == photo_id
    assert info["secret"] == replaced.find("photoid").get("secret")
    assert info["originalformat"] == "png"


def test_async_upload_is_tracked_by_its_ticket(
    app: FakeFlickr, server: SandboxServer, tmp_path: Path
) -> None:
    flickr = sandbox_flickr(server, token=demo_access_token(app, "write"), format="etree")
    image = tmp_path / "async.png"
    image.write_bytes(tiny_png())

    ticket = flickr.upload(str(image), **{"async": "1"}).findtext("ticketid")
    status = flickr.photos.upload.checkTickets(tickets=ticket).find("uploader/ticket")

    assert status.get("complete") == "1"
    assert status.get("photoid") in app.state.library.photos


def test_upload_errors_surface_as_flickr_errors(
    app: FakeFlickr, server: SandboxServer, tmp_path: Path
) -> None:
    flickr = sandbox_flickr(server, token=demo_access_token(app, "write"), format="etree")
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("just words")

    with pytest.raises(FlickrError) as error:
        flickr.upload(str(not_an_image))

    assert error.value.code == 5
