from django.urls import path

from jobs.api import EnqueueApi, JobDetailApi, JobStatusApi
from jobs.batch_api import BatchApi
from jobs.callback_api import CallbackSecretApi
from jobs.usage_api import UsageApi

urlpatterns = [
    path("flickr/rest", EnqueueApi.as_view(), name="job-enqueue"),
    path("flickr/batch", BatchApi.as_view(), name="job-batch"),
    path("flickr/jobs/status", JobStatusApi.as_view(), name="job-status"),
    path("flickr/jobs/<str:job_id>", JobDetailApi.as_view(), name="job-detail"),
    path("flickr/callbacks/secret", CallbackSecretApi.as_view(), name="callback-secret"),
    path("usage", UsageApi.as_view(), name="usage"),
]
