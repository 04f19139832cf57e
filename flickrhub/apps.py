from django.apps import AppConfig


class FlickrhubConfig(AppConfig):
    name = "flickrhub"
    verbose_name = "FlickrHub"
