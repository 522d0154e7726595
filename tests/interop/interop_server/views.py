from django.http import JsonResponse
from rest_framework.response import Response
from rest_framework.views import APIView


class Protected(APIView):
    """GET with a valid access token (JWTAuthentication, IsAuthenticated from settings)."""

    def get(self, request):
        return Response({"ok": True, "user": request.user.get_username()})


def health(request):
    """Unauthenticated readiness probe for run.sh."""
    return JsonResponse({"ok": True})
