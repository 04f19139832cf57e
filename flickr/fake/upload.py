"""/services/upload/ and /services/replace/ (FLICKR-API.md §3).

Multipart POSTs, signed over every field except `photo`, needing a write token. Answers are
XML whatever `format` says (Flickr staff, flickr-sdk PR #104). The file is streamed from
werkzeug's spooled copy into a hash; only its summary is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import PurePath

from werkzeug import Response
from werkzeug.datastructures import FileStorage

from .catalog import perms_level
from .filetypes import FileSummary, summarise
from .models import AccessToken, Photo, parse_tags
from .rest import EXPIRED_KEY, INVALID_KEY, INVALID_TOKEN, Outcome, insufficient
from .rsp import XML_CONTENT_TYPE, Node, error_payload, node, render_xml, text_node
from .signing import Incoming, OAuthProblem, verify
from .state import SandboxState

WRITE = perms_level("write")
MESSAGES = {
    1: "Photo not found",
    2: "No photo specified",
    3: "General upload failure",
    4: "Filesize was zero",
    5: "Filetype was not recognised",
    6: "Upload limit reached. For more info, visit flickr.com/pro",
    8: "Filesize was too large",
    9: "Duplicate photo/video detected",
}
NOT_PRO = "Not a pro account"
DEFAULT_DIMS = (1024, 768)


class UploadError(Exception):
    def __init__(self, code: int, message: str | None = None, extra: list[Node] | None = None):
        super().__init__(code)
        self.code = code
        self.message = message or MESSAGES[code]
        self.extra = extra or []


def _xml(payload: list[Node], stat: str = "ok", code: int | None = None) -> Outcome:
    body = render_xml(stat, payload)
    return Outcome(Response(body, content_type=XML_CONTENT_TYPE), code)


def _fail(code: int, message: str, extra: list[Node] | None = None) -> Outcome:
    return _xml(error_payload(code, message) + (extra or []), "fail", code)


def _authenticate(incoming: Incoming, state: SandboxState) -> AccessToken:
    """Key, signature, token and write permission; raises what to answer."""
    consumer = state.consumer(incoming.consumer_key)
    if consumer is None:
        raise UploadError(100, INVALID_KEY)
    if consumer.expired:
        raise UploadError(100, EXPIRED_KEY)
    if not incoming.signed or not incoming.token:
        raise UploadError(99, insufficient(WRITE, "none"))
    token = state.access_token(incoming.token)
    if token is None:
        raise UploadError(98, INVALID_TOKEN)
    verify(incoming, state, consumer, token.secret)  # OAuthProblem -> HTTP 401
    if token.revoked or token.consumer_key != consumer.key:
        raise UploadError(98, INVALID_TOKEN)
    if perms_level(token.perms) < WRITE:
        raise UploadError(99, insufficient(WRITE, token.perms))
    return token


def _check_file(file: FileStorage | None, max_bytes: int) -> FileSummary:
    if file is None:
        raise UploadError(2)
    summary = summarise(file.stream)
    if summary.size == 0:
        raise UploadError(4)
    if summary.size > max_bytes:
        raise UploadError(8)
    return summary


def _flag(args: dict[str, str], name: str) -> int:
    return 1 if args.get(name, "").strip() == "1" else 0


def _privacy(args: dict[str, str]) -> tuple[int, int, int]:
    if not any(name in args for name in ("is_public", "is_friend", "is_family")):
        return 1, 0, 0  # the sandbox people's default privacy: public
    return _flag(args, "is_public"), _flag(args, "is_friend"), _flag(args, "is_family")


def _new_photo(
    state: SandboxState, owner: str, args: dict[str, str], filename: str, summary: FileSummary
) -> Photo:
    now = state.clock()
    ispublic, isfriend, isfamily = _privacy(args)
    safety = args.get("safety_level", "")
    width, height = (summary.width, summary.height) if summary.width else DEFAULT_DIMS
    return Photo(
        id=state.new_photo_id(),
        owner=owner,
        secret=state.secret(),
        server=str(state.rng.randint(1000, 65535)),
        farm=66,
        originalsecret=state.secret(),
        originalformat=summary.extension,
        # Flickr titles an untitled upload after its file name (§3.1).
        title=args.get("title", PurePath(filename).stem),
        description=args.get("description", ""),
        tags=parse_tags(args.get("tags", "")),
        # No EXIF is read, so the taken date is the upload time, flagged unknown.
        date_taken=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        date_upload=int(now),
        last_update=int(now),
        ispublic=ispublic,
        isfriend=isfriend,
        isfamily=isfamily,
        width=width or DEFAULT_DIMS[0],
        height=height or DEFAULT_DIMS[1],
        safety_level=int(safety) - 1 if safety in ("1", "2", "3") else 0,
        media=summary.media,
        taken_unknown=1,
        sha1=summary.sha1,
        size_bytes=summary.size,
        content_type=int(args["content_type"]) if args.get("content_type") in ("1", "2", "3") else 1,
        hidden=2 if args.get("hidden") == "2" else 1,
    )


def _unreadable(summary: FileSummary, async_mode: bool, state: SandboxState) -> Outcome | None:
    """Unrecognised or cut-short files: an error now, or a failed ticket in async mode."""
    code = 5 if summary.kind is None else 3 if summary.truncated else None
    if code is None:
        return None
    if async_mode:
        # Async uploads are checked after the answer: the ticket reports complete="2" (§3.4).
        ticket = state.new_ticket(None, complete=2)
        return _xml([text_node("ticketid", ticket.id)])
    return _fail(code, MESSAGES[code])


def _guarded(
    incoming: Incoming,
    state: SandboxState,
    forced_error: tuple[int, str] | None,
    body: Callable[[AccessToken], Outcome],
) -> Outcome:
    """Authenticate, run `body`, and turn what it raises into Flickr's answers."""
    if forced_error is not None:
        return _fail(*forced_error)
    try:
        token = _authenticate(incoming, state)
        outcome = body(token)
    except OAuthProblem as problem:
        outcome = Outcome(problem.response())
    except UploadError as error:
        outcome = _fail(error.code, error.message, error.extra)
    return outcome


def _ticket_or(state: SandboxState, async_mode: bool, photo_id: str, answer: Node) -> Outcome:
    if async_mode:
        return _xml([text_node("ticketid", state.new_ticket(photo_id, complete=1).id)])
    return _xml([answer])


def _upload(incoming: Incoming, state: SandboxState, token: AccessToken, max_bytes: int) -> Outcome:
    args = incoming.args
    file = incoming.request.files.get("photo")
    summary = _check_file(file, max_bytes)
    assert file is not None
    async_mode = args.get("async") == "1"
    if (failed := _unreadable(summary, async_mode, state)) is not None:
        return failed
    with state.lock:
        user = state.user(token.nsid)
        assert user is not None
        owned = sum(1 for p in state.library.photos.values() if p.owner == user.nsid)
        if owned >= user.upload_limit:
            raise UploadError(6)
        known = state.hashes.setdefault(user.nsid, {})
        if args.get("dedup_check") in ("1", "2") and summary.sha1 in known:
            raise UploadError(9, extra=[text_node("duplicate_photo_id", known[summary.sha1])])
        photo = _new_photo(state, user.nsid, args, file.filename or "", summary)
        state.library.photos[photo.id] = photo
        known.setdefault(summary.sha1, photo.id)  # dedup names the first copy
        return _ticket_or(state, async_mode, photo.id, text_node("photoid", photo.id))


def _replace(incoming: Incoming, state: SandboxState, token: AccessToken, max_bytes: int) -> Outcome:
    args = incoming.args
    user = state.user(token.nsid)
    assert user is not None
    if not user.ispro:
        raise UploadError(1, NOT_PRO)  # replace is a Pro feature per its doc (§3.3)
    photo = state.library.photos.get(args.get("photo_id", "").strip())
    if photo is None or photo.owner != user.nsid:
        # Undocumented for replace; "1 ... not found" is Flickr's usual shape (§2.4).
        raise UploadError(1)
    summary = _check_file(incoming.request.files.get("photo"), max_bytes)
    async_mode = args.get("async") == "1"
    if (failed := _unreadable(summary, async_mode, state)) is not None:
        return failed
    with state.lock:
        known = state.hashes.setdefault(user.nsid, {})
        if photo.sha1 and known.get(photo.sha1) == photo.id:
            del known[photo.sha1]
        # New file, new secrets: every old image URL stops working (§3.3).
        photo.secret, photo.originalsecret = state.secret(), state.secret()
        photo.originalformat = summary.extension
        photo.sha1, photo.size_bytes, photo.media = summary.sha1, summary.size, summary.media
        if summary.width and summary.height:
            photo.width, photo.height = summary.width, summary.height
        photo.last_update = int(state.clock())
        known.setdefault(summary.sha1, photo.id)  # dedup names the first copy
        secrets = {"secret": photo.secret, "originalsecret": photo.originalsecret}
        return _ticket_or(state, async_mode, photo.id, node("photoid", secrets, text=photo.id))


def serve_upload(
    incoming: Incoming,
    state: SandboxState,
    *,
    max_bytes: int,
    forced_error: tuple[int, str] | None = None,
) -> Outcome:
    return _guarded(incoming, state, forced_error, lambda t: _upload(incoming, state, t, max_bytes))


def serve_replace(
    incoming: Incoming,
    state: SandboxState,
    *,
    max_bytes: int,
    forced_error: tuple[int, str] | None = None,
) -> Outcome:
    return _guarded(incoming, state, forced_error, lambda t: _replace(incoming, state, t, max_bytes))
