from django.apps import AppConfig


class FlickrConfig(AppConfig):
    name = "flickr"
    verbose_name = "Flickr"
