"""The Flickr method catalog: which permission each method needs and whether it only reads.

Taken from Flickr's own reflection output (flickr.reflection.getMethods / getMethodInfo, the 2015
dump cited in shared/FLICKR-API.md §5.4). A method that is not listed is treated as a write: it is
never cached and never retried blindly, which is the safe mistake to make.
"""

from __future__ import annotations

from typing import Final

# requiredperms of every known method, without the `flickr.` prefix.
_PERMS: Final[dict[str, str]] = {
    # none
    "auth.checkToken": "none",
    "auth.getFrob": "none",
    "auth.getFullToken": "none",
    "auth.getToken": "none",
    "auth.oauth.checkToken": "none",
    "auth.oauth.getAccessToken": "none",
    "blogs.getServices": "none",
    "cameras.getBrandModels": "none",
    "cameras.getBrands": "none",
    "collections.getTree": "none",
    "commons.getInstitutions": "none",
    "contacts.getPublicList": "none",
    "favorites.getContext": "none",
    "favorites.getPublicList": "none",
    "galleries.getInfo": "none",
    "galleries.getList": "none",
    "galleries.getListForPhoto": "none",
    "galleries.getPhotos": "none",
    "groups.discuss.replies.getInfo": "none",
    "groups.discuss.replies.getList": "none",
    "groups.discuss.topics.getInfo": "none",
    "groups.discuss.topics.getList": "none",
    "groups.getInfo": "none",
    "groups.pools.getContext": "none",
    "groups.pools.getPhotos": "none",
    "groups.search": "none",
    "interestingness.getList": "none",
    "machinetags.getNamespaces": "none",
    "machinetags.getPairs": "none",
    "machinetags.getPredicates": "none",
    "machinetags.getRecentValues": "none",
    "machinetags.getValues": "none",
    "panda.getList": "none",
    "panda.getPhotos": "none",
    "people.findByEmail": "none",
    "people.findByUsername": "none",
    "people.getInfo": "none",
    "people.getPhotos": "none",
    "people.getPhotosOf": "none",
    "people.getPublicGroups": "none",
    "people.getPublicPhotos": "none",
    "photos.comments.getList": "none",
    "photos.geo.getLocation": "none",
    "photos.getAllContexts": "none",
    "photos.getContactsPublicPhotos": "none",
    "photos.getContext": "none",
    "photos.getExif": "none",
    "photos.getFavorites": "none",
    "photos.getInfo": "none",
    "photos.getRecent": "none",
    "photos.getSizes": "none",
    "photos.licenses.getInfo": "none",
    "photos.people.getList": "none",
    "photos.search": "none",
    "photos.upload.checkTickets": "none",
    "photosets.comments.getList": "none",
    "photosets.getContext": "none",
    "photosets.getInfo": "none",
    "photosets.getList": "none",
    "photosets.getPhotos": "none",
    "places.find": "none",
    "places.findByLatLon": "none",
    "places.getChildrenWithPhotosPublic": "none",
    "places.getInfo": "none",
    "places.getInfoByUrl": "none",
    "places.getPlaceTypes": "none",
    "places.getShapeHistory": "none",
    "places.getTopPlacesList": "none",
    "places.placesForBoundingBox": "none",
    "places.placesForTags": "none",
    "places.resolvePlaceId": "none",
    "places.resolvePlaceURL": "none",
    "places.tagsForPlace": "none",
    "push.getTopics": "none",
    "reflection.getMethodInfo": "none",
    "reflection.getMethods": "none",
    "tags.getClusterPhotos": "none",
    "tags.getClusters": "none",
    "tags.getHotList": "none",
    "tags.getListPhoto": "none",
    "tags.getListUser": "none",
    "tags.getListUserPopular": "none",
    "tags.getListUserRaw": "none",
    "tags.getRelated": "none",
    "test.echo": "none",
    "urls.getGroup": "none",
    "urls.getUserPhotos": "none",
    "urls.getUserProfile": "none",
    "urls.lookupGallery": "none",
    "urls.lookupGroup": "none",
    "urls.lookupUser": "none",
    # read
    "activity.userComments": "read",
    "activity.userPhotos": "read",
    "blogs.getList": "read",
    "collections.getInfo": "read",
    "contacts.getList": "read",
    "contacts.getListRecentlyUploaded": "read",
    "contacts.getTaggingSuggestions": "read",
    "favorites.getList": "read",
    "groups.browse": "read",
    "groups.members.getList": "read",
    "groups.pools.getGroups": "read",
    "people.getGroups": "read",
    "people.getLimits": "read",
    "people.getUploadStatus": "read",
    "photos.comments.getRecentForContacts": "read",
    "photos.geo.getPerms": "read",
    "photos.geo.photosForLocation": "read",
    "photos.getContactsPhotos": "read",
    "photos.getCounts": "read",
    "photos.getNotInSet": "read",
    "photos.getPerms": "read",
    "photos.getUntagged": "read",
    "photos.getWithGeoData": "read",
    "photos.getWithoutGeoData": "read",
    "photos.recentlyUpdated": "read",
    "photos.suggestions.getList": "read",
    "places.placesForContacts": "read",
    "places.placesForUser": "read",
    "prefs.getContentType": "read",
    "prefs.getGeoPerms": "read",
    "prefs.getHidden": "read",
    "prefs.getPrivacy": "read",
    "prefs.getSafetyLevel": "read",
    "push.getSubscriptions": "read",
    "push.subscribe": "read",
    "push.unsubscribe": "read",
    "stats.getCSVFiles": "read",
    "stats.getCollectionDomains": "read",
    "stats.getCollectionReferrers": "read",
    "stats.getCollectionStats": "read",
    "stats.getPhotoDomains": "read",
    "stats.getPhotoReferrers": "read",
    "stats.getPhotoStats": "read",
    "stats.getPhotosetDomains": "read",
    "stats.getPhotosetReferrers": "read",
    "stats.getPhotosetStats": "read",
    "stats.getPhotostreamDomains": "read",
    "stats.getPhotostreamReferrers": "read",
    "stats.getPhotostreamStats": "read",
    "stats.getPopularPhotos": "read",
    "stats.getTotalViews": "read",
    "tags.getMostFrequentlyUsed": "read",
    "test.login": "read",
    "test.null": "read",
    # write
    "blogs.postPhoto": "write",
    "favorites.add": "write",
    "favorites.remove": "write",
    "galleries.addPhoto": "write",
    "galleries.create": "write",
    "galleries.editMeta": "write",
    "galleries.editPhoto": "write",
    "galleries.editPhotos": "write",
    "groups.discuss.replies.add": "write",
    "groups.discuss.replies.edit": "write",
    "groups.discuss.topics.add": "write",
    "groups.join": "write",
    "groups.joinRequest": "write",
    "groups.pools.add": "write",
    "groups.pools.remove": "write",
    "photos.addTags": "write",
    "photos.comments.addComment": "write",
    "photos.comments.deleteComment": "write",
    "photos.comments.editComment": "write",
    "photos.geo.batchCorrectLocation": "write",
    "photos.geo.correctLocation": "write",
    "photos.geo.removeLocation": "write",
    "photos.geo.setContext": "write",
    "photos.geo.setLocation": "write",
    "photos.geo.setPerms": "write",
    "photos.licenses.setLicense": "write",
    "photos.notes.add": "write",
    "photos.notes.delete": "write",
    "photos.notes.edit": "write",
    "photos.people.add": "write",
    "photos.people.delete": "write",
    "photos.people.deleteCoords": "write",
    "photos.people.editCoords": "write",
    "photos.removeTag": "write",
    "photos.setContentType": "write",
    "photos.setDates": "write",
    "photos.setMeta": "write",
    "photos.setPerms": "write",
    "photos.setSafetyLevel": "write",
    "photos.setTags": "write",
    "photos.suggestions.approveSuggestion": "write",
    "photos.suggestions.rejectSuggestion": "write",
    "photos.suggestions.removeSuggestion": "write",
    "photos.suggestions.suggestLocation": "write",
    "photos.transform.rotate": "write",
    "photosets.addPhoto": "write",
    "photosets.comments.addComment": "write",
    "photosets.comments.deleteComment": "write",
    "photosets.comments.editComment": "write",
    "photosets.create": "write",
    "photosets.delete": "write",
    "photosets.editMeta": "write",
    "photosets.editPhotos": "write",
    "photosets.orderSets": "write",
    "photosets.removePhoto": "write",
    "photosets.removePhotos": "write",
    "photosets.reorderPhotos": "write",
    "photosets.setPrimaryPhoto": "write",
    # delete
    "groups.discuss.replies.delete": "delete",
    "groups.leave": "delete",
    "photos.delete": "delete",
}

# State-changing methods that need only read permission (FLICKR-API.md §5.2): never cached.
_WRITES_DESPITE_PERMS: Final = frozenset({"push.subscribe", "push.unsubscribe"})
# Token probes and polls: read-only, but their answer is about now, so never cached.
_NEVER_CACHED: Final = frozenset(
    {"test.echo", "test.login", "test.null", "auth.oauth.checkToken", "photos.upload.checkTickets"}
)
PERMISSION_LADDER: Final = ("none", "read", "write", "delete")


def _short(method: str) -> str:
    return method.removeprefix("flickr.")


def required_perms(method: str) -> str | None:
    """The permission Flickr requires for a method, or None when the method is not catalogued."""
    return _PERMS.get(_short(method))


def is_read_only(method: str) -> bool:
    """True for methods that change nothing on Flickr: safe to retry and to cache."""
    short = _short(method)
    perms = _PERMS.get(short)
    return perms in ("none", "read") and short not in _WRITES_DESPITE_PERMS


def is_cacheable(method: str) -> bool:
    return is_read_only(method) and _short(method) not in _NEVER_CACHED


def perms_allow(granted: str, method: str) -> bool:
    """Whether a token granted `granted` may call `method` (read < write < delete)."""
    needed = required_perms(method) or "write"
    return PERMISSION_LADDER.index(granted) >= PERMISSION_LADDER.index(needed)
