"""The enqueue benchmark's baseline: a minimal DRF view that parses the same JSON body and does
one INSERT in the same database, served by the same server with the same settings. What the
hub does on top of it (API key, account check, in-flight cap, publish) is its overhead."""

from __future__ import annotations

from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.models import BaselineRow


class BaselineInsertApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        row = BaselineRow.objects.create(payload=request.data)
        return Response({"id": str(row.id)}, status=status.HTTP_201_CREATED)
