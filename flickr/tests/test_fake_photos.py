"""The seeded library through the REST methods: search, privacy, photo details, albums, writes."""

from __future__ import annotations

from flickr.fake import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, FakeFlickr, SandboxServer
from flickr.fake.models import Photo, User
from flickr.fake.testing import SandboxClient


def as_user(server: SandboxServer, app: FakeFlickr, user: User | None, perms: str = "read") -> SandboxClient:
    """A client signed for `user`, or an anonymous one (consumer-signed only) for None."""
    if user is None:
        return SandboxClient(server.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET)
    token, secret = app.state.issue_access_token(
        consumer_key=SANDBOX_CONSUMER_KEY, nsid=user.nsid, perms=perms
    )
    return SandboxClient(server.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, token, secret)


def photos_of(app: FakeFlickr, user: User, **matching: int) -> list[Photo]:
    return [
        p
        for p in app.state.library.photos.values()
        if p.owner == user.nsid and all(getattr(p, k) == v for k, v in matching.items())
    ]


def ids(answer: dict) -> list[str]:
    return [p["id"] for p in answer["photos"]["photo"]]


# ---------------------------------------------------------------- the seeded world


def test_the_same_seed_builds_the_same_world() -> None:
    first, again, other = FakeFlickr(seed=1), FakeFlickr(seed=1), FakeFlickr(seed=2)

    assert [u.nsid for u in first.state.users] == [u.nsid for u in again.state.users]
    assert list(first.state.library.photos) == list(again.state.library.photos)
    assert first.state.demo_token() == again.state.demo_token()
    assert [u.nsid for u in first.state.users] != [u.nsid for u in other.state.users]


def test_every_seeded_person_has_a_library_with_albums_and_favourites(app: FakeFlickr) -> None:
    assert len(app.state.users) >= 3
    for user in app.state.users:
        own = photos_of(app, user)
        assert 30 <= len(own) <= 60
        assert any(s.owner == user.nsid for s in app.state.library.photosets.values())
        assert app.state.library.favorites[user.nsid]
        assert {p.ispublic for p in own} == {0, 1}
        assert user.nsid.split("@")[1].startswith("N0")


# ---------------------------------------------------------------- search


def test_a_search_without_any_limiting_argument_is_refused(server: SandboxServer, app: FakeFlickr) -> None:
    answer = as_user(server, app, None).json("flickr.photos.search", extras="tags", per_page="5")

    assert answer == {
        "stat": "fail",
        "code": 3,
        "message": "Parameterless searches have been disabled. Please use flickr.photos.getRecent instead.",
    }


def test_tag_mode_any_finds_either_tag_and_all_needs_both(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user
    anon = as_user(server, app, demo)
    fog = {p.id for p in photos_of(app, demo) if "fog" in p.tags}
    night = {p.id for p in photos_of(app, demo) if "night" in p.tags}

    either = anon.json("flickr.photos.search", user_id="me", tags="fog,night", per_page="500")
    both = anon.json("flickr.photos.search", user_id="me", tags="fog, NIGHT", tag_mode="all", per_page="500")

    assert set(ids(either)) == fog | night
    assert set(ids(both)) == fog & night


def test_multi_word_tags_match_in_their_normalised_form(server: SandboxServer, app: FakeFlickr) -> None:
    expected = {p.id for p in app.state.library.photos.values() if "Central Station" in p.tags and p.ispublic}

    answer = as_user(server, app, None).json("flickr.photos.search", tags="centralstation", per_page="500")

    assert set(ids(answer)) == expected


def test_text_search_looks_at_titles_descriptions_and_tags(server: SandboxServer, app: FakeFlickr) -> None:
    answer = as_user(server, app, None).json("flickr.photos.search", text="lighthouse", per_page="500")

    assert answer["photos"]["photo"]
    assert all("lighthouse" in p["title"].lower() for p in answer["photos"]["photo"])


def test_me_means_the_calling_person_and_needs_a_token(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user

    mine = as_user(server, app, demo).json("flickr.photos.search", user_id="me", per_page="500")
    anonymous = as_user(server, app, None).json("flickr.photos.search", user_id="me")

    assert mine["photos"]["total"] == str(len(photos_of(app, demo)))
    assert anonymous == {"stat": "fail", "code": 2, "message": "Unknown user"}


def test_date_bounds_accept_unix_times_and_mysql_dates(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user
    client = as_user(server, app, demo)

    taken = client.json(
        "flickr.photos.search",
        user_id="me",
        min_taken_date="2016-01-01",
        max_taken_date="2018-12-31 23:59:59",
        extras="date_taken",
        per_page="500",
    )
    uploaded = client.json("flickr.photos.search", user_id="me", min_upload_date="1577836800", per_page="500")

    assert taken["photos"]["photo"]
    assert all("2016" <= p["datetaken"][:4] <= "2018" for p in taken["photos"]["photo"])
    assert set(ids(uploaded)) == {p.id for p in photos_of(app, demo) if p.date_upload >= 1577836800}


def test_paging_reports_flickrs_fields_and_clamps_per_page(server: SandboxServer, app: FakeFlickr) -> None:
    client = as_user(server, app, app.state.demo_user)
    total = len(photos_of(app, app.state.demo_user))

    first = client.json("flickr.photos.search", user_id="me", per_page="10")["photos"]
    clamped = client.json("flickr.photos.search", user_id="me", per_page="9000")["photos"]
    beyond = client.json("flickr.photos.search", user_id="me", per_page="10", page="99")["photos"]

    assert (first["page"], first["perpage"], first["total"], first["pages"]) == (
        1,
        10,
        str(total),
        -(-total // 10),
    )
    assert len(first["photo"]) == 10
    assert clamped["perpage"] == 500
    assert beyond["photo"] == [] and beyond["total"] == str(total)


def test_search_serves_only_the_first_results_up_to_the_cap(server: SandboxServer) -> None:
    capped = FakeFlickr(seed=1, search_cap=10)
    with SandboxServer(capped) as small:
        client = SandboxClient(small.url, SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET)
        second = client.json("flickr.photos.search", tags="fog,night,film", per_page="5", page="2")
        deep = client.json("flickr.photos.search", tags="fog,night,film", per_page="5", page="7")

    assert int(deep["photos"]["total"]) > 10
    assert deep["photos"]["page"] == 7
    assert ids(deep) == ids(second)


def test_extras_add_flickrs_fields_to_each_photo(server: SandboxServer, app: FakeFlickr) -> None:
    answer = as_user(server, app, app.state.demo_user).json(
        "flickr.photos.search",
        user_id="me",
        per_page="3",
        extras="description, owner_name,date_upload,url_sq,url_m,o_dims,tags,geo,views,media",
    )

    photo = answer["photos"]["photo"][0]
    assert photo["ownername"] == app.state.demo_user.username
    assert set(photo["description"]) == {"_content"}
    assert photo["width_sq"] == photo["height_sq"] == 75
    assert photo["url_m"].startswith("https://live.staticflickr.com/")
    assert {"dateupload", "o_width", "tags", "latitude", "views", "media"} <= set(photo)
    assert isinstance(photo["farm"], int) and isinstance(photo["ispublic"], int)
    assert isinstance(photo["id"], str) and isinstance(photo["server"], str)


# ---------------------------------------------------------------- privacy


def test_anonymous_callers_see_only_public_photos(server: SandboxServer, app: FakeFlickr) -> None:
    miles = app.state.users[1]

    answer = as_user(server, app, None).json("flickr.people.getPhotos", user_id=miles.nsid, per_page="500")

    assert set(ids(answer)) == {p.id for p in photos_of(app, miles, ispublic=1)}


def test_someone_elses_private_photo_is_not_found(server: SandboxServer, app: FakeFlickr) -> None:
    aurora, miles = app.state.users[0], app.state.users[1]
    private = next(p for p in photos_of(app, miles) if p.is_private)

    as_stranger = as_user(server, app, aurora).json("flickr.photos.getInfo", photo_id=private.id)
    as_owner = as_user(server, app, miles).json("flickr.photos.getInfo", photo_id=private.id)

    assert as_stranger == {"stat": "fail", "code": 1, "message": "Photo not found."}
    assert as_owner["photo"]["id"] == private.id


def test_friends_see_friends_only_photos(server: SandboxServer, app: FakeFlickr) -> None:
    aurora, miles, _kumiko, rafael = app.state.users
    assert miles.nsid in aurora.friends
    friends_only = [p.id for p in photos_of(app, aurora, ispublic=0, isfriend=1)]

    by_friend = set(
        ids(as_user(server, app, miles).json("flickr.people.getPhotos", user_id=aurora.nsid, per_page="500"))
    )
    by_stranger = set(
        ids(as_user(server, app, rafael).json("flickr.people.getPhotos", user_id=aurora.nsid, per_page="500"))
    )

    assert friends_only
    assert set(friends_only) <= by_friend
    assert not set(friends_only) & by_stranger


def test_owners_can_filter_their_own_photos_by_privacy(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user

    private = as_user(server, app, demo).json(
        "flickr.photos.search", user_id="me", privacy_filter="5", per_page="500"
    )

    assert set(ids(private)) == {p.id for p in photos_of(app, demo) if p.is_private}


# ---------------------------------------------------------------- one photo


def test_photo_info_has_flickrs_structure(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user
    photo = photos_of(app, demo)[0]

    info = as_user(server, app, demo).json("flickr.photos.getInfo", photo_id=photo.id)["photo"]

    assert info["owner"]["nsid"] == demo.nsid
    assert info["title"] == {"_content": photo.title}
    assert info["dates"]["taken"] == photo.date_taken
    assert info["visibility"] == {
        "ispublic": photo.ispublic,
        "isfriend": photo.isfriend,
        "isfamily": photo.isfamily,
    }
    assert [t["raw"] for t in info["tags"]["tag"]] == photo.tags
    assert info["urls"]["url"][0]["type"] == "photopage"
    assert "permissions" in info  # the owner sees their own settings


def test_sizes_run_from_square_to_original(server: SandboxServer, app: FakeFlickr) -> None:
    photo = next(
        p for p in app.state.library.photos.values() if p.ispublic and max(p.width, p.height) >= 4000
    )

    sizes = as_user(server, app, None).json("flickr.photos.getSizes", photo_id=photo.id)["sizes"]["size"]

    labels = [s["label"] for s in sizes]
    assert labels[:3] == ["Square", "Large Square", "Thumbnail"]
    assert labels[-1] == "Original"
    assert (sizes[-1]["width"], sizes[-1]["height"]) == (photo.width, photo.height)
    assert sizes[-1]["source"].endswith(f"{photo.id}_{photo.originalsecret}_o.jpg")
    medium = next(s for s in sizes if s["label"] == "Medium")
    assert max(medium["width"], medium["height"]) == 500


def test_exif_lists_the_camera_settings(server: SandboxServer, app: FakeFlickr) -> None:
    photo = next(p for p in app.state.library.photos.values() if p.ispublic)

    exif = as_user(server, app, None).json("flickr.photos.getExif", photo_id=photo.id)["photo"]

    labels = {e["label"]: e for e in exif["exif"]}
    assert exif["camera"] == photo.camera
    assert labels["Aperture"]["clean"]["_content"].startswith("f/")
    assert "raw" in labels["Model"]


def test_recent_photos_are_public_and_newest_first(server: SandboxServer, app: FakeFlickr) -> None:
    recent = as_user(server, app, None).json("flickr.photos.getRecent", per_page="20", extras="date_upload")

    uploads = [int(p["dateupload"]) for p in recent["photos"]["photo"]]
    assert uploads == sorted(uploads, reverse=True)
    assert all(p["ispublic"] == 1 for p in recent["photos"]["photo"])


def test_people_get_info_describes_the_person(server: SandboxServer, app: FakeFlickr) -> None:
    kumiko = app.state.users[2]

    person = as_user(server, app, None).json("flickr.people.getInfo", user_id=kumiko.nsid)["person"]

    assert person["nsid"] == kumiko.nsid
    assert person["username"] == {"_content": kumiko.username}
    assert person["realname"] == {"_content": kumiko.fullname}
    assert person["photos"]["count"] == {"_content": str(len(photos_of(app, kumiko)))}


# ---------------------------------------------------------------- albums and favourites


def test_albums_list_and_open(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user
    client = as_user(server, app, demo)

    albums = client.json("flickr.photosets.getList")["photosets"]
    first = albums["photoset"][0]
    opened = client.json("flickr.photosets.getPhotos", photoset_id=first["id"])["photoset"]

    assert albums["total"] == str(
        len([s for s in app.state.library.photosets.values() if s.owner == demo.nsid])
    )
    assert set(first["title"]) == {"_content"}
    assert opened["owner"] == demo.nsid
    assert opened["per_page"] == opened["perpage"] == 500
    assert [p["id"] for p in opened["photo"]] == app.state.library.photosets[first["id"]].photo_ids
    assert [p["isprimary"] for p in opened["photo"]].count("1") == 1


def test_favourites_need_a_login_and_list_newest_first(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user

    anonymous = as_user(server, app, None).json("flickr.favorites.getList")
    faves = as_user(server, app, demo).json("flickr.favorites.getList", per_page="500")["photos"]["photo"]

    assert anonymous["code"] == 99
    dates = [int(p["date_faved"]) for p in faves]
    assert dates == sorted(dates, reverse=True)
    assert {p["id"] for p in faves} == set(app.state.library.favorites[demo.nsid])


# ---------------------------------------------------------------- writes


def test_set_meta_is_seen_by_later_reads(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user
    photo = photos_of(app, demo)[0]
    writer = as_user(server, app, demo, "write")

    done = writer.json("flickr.photos.setMeta", photo_id=photo.id, title="Renamed", description="New words")
    info = writer.json("flickr.photos.getInfo", photo_id=photo.id)["photo"]

    assert done == {"stat": "ok"}
    assert info["title"] == {"_content": "Renamed"}
    assert info["description"] == {"_content": "New words"}


def test_only_the_owner_can_change_a_photo(server: SandboxServer, app: FakeFlickr) -> None:
    public_of_miles = photos_of(app, app.state.users[1], ispublic=1)[0]

    answer = as_user(server, app, app.state.demo_user, "delete").json(
        "flickr.photos.setMeta", photo_id=public_of_miles.id, title="Mine now"
    )

    assert answer == {"stat": "fail", "code": 1, "message": "Photo not found"}
    assert public_of_miles.title != "Mine now"


def test_added_tags_are_searchable(server: SandboxServer, app: FakeFlickr) -> None:
    photo = photos_of(app, app.state.demo_user)[0]
    writer = as_user(server, app, app.state.demo_user, "write")

    writer.json("flickr.photos.addTags", photo_id=photo.id, tags='zebra "Blue Door"')
    found = writer.json("flickr.photos.search", user_id="me", tags="bluedoor")

    assert ids(found) == [photo.id]
    assert photo.tags[-2:] == ["zebra", "Blue Door"]


def test_a_deleted_photo_is_gone_everywhere(server: SandboxServer, app: FakeFlickr) -> None:
    demo = app.state.demo_user
    photoset = next(s for s in app.state.library.photosets.values() if s.owner == demo.nsid)
    victim = photoset.photo_ids[-1]
    deleter = as_user(server, app, demo, "delete")

    assert deleter.json("flickr.photos.delete", photo_id=victim) == {"stat": "ok"}

    assert deleter.json("flickr.photos.getInfo", photo_id=victim)["code"] == 1
    assert victim not in ids(deleter.json("flickr.photos.search", user_id="me", per_page="500"))
    assert victim not in [
        p["id"]
        for p in deleter.json("flickr.photosets.getPhotos", photoset_id=photoset.id)["photoset"]["photo"]
    ]
    assert deleter.json("flickr.photos.delete", photo_id=victim)["code"] == 1


def test_albums_can_be_created_and_filled_once_per_photo(server: SandboxServer, app: FakeFlickr) -> None:
    first, second = photos_of(app, app.state.demo_user)[:2]
    writer = as_user(server, app, app.state.demo_user, "write")

    created = writer.json("flickr.photosets.create", title="Best of", primary_photo_id=first.id)["photoset"]
    added = writer.json("flickr.photosets.addPhoto", photoset_id=created["id"], photo_id=second.id)
    again = writer.json("flickr.photosets.addPhoto", photoset_id=created["id"], photo_id=second.id)
    opened = writer.json("flickr.photosets.getPhotos", photoset_id=created["id"])["photoset"]

    assert created["url"].endswith(f"/sets/{created['id']}/")
    assert added == {"stat": "ok"}
    assert again == {"stat": "fail", "code": 3, "message": "Photo already in set"}
    assert [p["id"] for p in opened["photo"]] == [first.id, second.id]
