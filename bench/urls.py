from django.urls import path

from bench.views import BaselineInsertApi

urlpatterns = [path("insert", BaselineInsertApi.as_view(), name="bench-insert")]
