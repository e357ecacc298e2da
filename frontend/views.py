from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from annotation import roles, selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    campaigns = selectors.campaigns_for_user(user=request.user)
    return render(
        request,
        "frontend/home.html",
        {
            "campaigns": campaigns,
            "is_rater": roles.is_rater(request.user),
            "is_lead": roles.is_lead_or_admin(request.user),
            "is_admin": roles.is_admin(request.user),
        },
    )


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
