"""`"paginate": true`: one job walks every page of a list method and stores the merged list.

Each page is one Flickr call, made like any other (circuit, quota), and each page's items are
saved with the job before the next page is asked for, so a failure part-way resumes from the
page that failed, not from the first. Flickr returns at most about 4,000 results for a search
(FLICKR-API.md §6), so a search walk stops there; the merged list is capped at
PAGINATE_MAX_ITEMS, with a clear error past it.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings

from flickr.errors import ErrorClass, FlickrError

# List methods whose answers carry page/pages/perpage/total around a list.
PAGINATED_METHODS = frozenset(
    {
        "flickr.photos.search",
        "flickr.photos.getRecent",
        "flickr.people.getPhotos",
        "flickr.people.getPublicPhotos",
        "flickr.photosets.getPhotos",
        "flickr.photosets.getList",
        "flickr.favorites.getList",
        "flickr.favorites.getPublicList",
        "flickr.groups.pools.getPhotos",
        "flickr.galleries.getPhotos",
        "flickr.interestingness.getList",
    }
)
SEARCH_RESULT_CAP = 4000
MAX_PER_PAGE = 500


def page_args(args: dict[str, str], progress: dict[str, Any] | None) -> dict[str, str]:
    """The arguments of the next page to ask for."""
    done = (progress or {}).get("pages_done", 0)
    return {**args, "page": str(done + 1), "per_page": args.get("per_page") or str(MAX_PER_PAGE)}


def _container(answer: dict[str, Any]) -> tuple[str, str]:
    """The key of the paged object (`photos`, `photoset`, …) and of its list (`photo`, …)."""
    for key, value in answer.items():
        if isinstance(value, dict) and "pages" in value:
            lists = [k for k, v in value.items() if isinstance(v, list)]
            if len(lists) == 1:
                return key, lists[0]
    raise FlickrError(
        "Flickr's answer has no paged list to walk; send the call without paginate.",
        error_class=ErrorClass.CALLER,
        code="ERR_NOT_PAGINATED",
    )


def merge(
    method: str, progress: dict[str, Any] | None, answer: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Adds a page's items to the walk; returns the new progress and whether the walk is over."""
    container, list_key = _container(answer)
    paged = answer[container]
    items = [*(progress or {}).get("items", []), *paged[list_key]]
    pages = int(paged.get("pages") or 0)
    per_page = int(paged.get("perpage") or paged.get("per_page") or MAX_PER_PAGE)
    if method == "flickr.photos.search":
        pages = min(pages, math.ceil(SEARCH_RESULT_CAP / max(1, per_page)))
    if len(items) > settings.PAGINATE_MAX_ITEMS:
        raise FlickrError(
            f"The walk passed {settings.PAGINATE_MAX_ITEMS} items (PAGINATE_MAX_ITEMS; Flickr reports "
            f"{paged.get('total')} in all). Narrow the query, or ask for the pages yourself.",
            error_class=ErrorClass.CALLER,
            code="ERR_RESULT_TOO_LARGE",
        )
    done = (progress or {}).get("pages_done", 0) + 1
    new = {
        "pages_done": done,
        "pages_total": pages,
        "container": container,
        "list_key": list_key,
        "total": paged.get("total"),
        "items": items,
    }
    return new, done >= pages or not paged[list_key]


def result(progress: dict[str, Any]) -> dict[str, Any]:
    """The merged answer, shaped like one big page of Flickr's."""
    items = progress["items"]
    return {
        "stat": "ok",
        progress["container"]: {
            "page": 1,
            "pages": 1,
            "perpage": len(items),
            "total": progress["total"],
            progress["list_key"]: items,
        },
        "pages_fetched": progress["pages_done"],
    }
