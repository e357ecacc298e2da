from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("annotate/<int:campaign_id>/", views.annotate, name="annotate"),
    path("history/", views.history, name="history"),
    path("history/<int:annotation_id>/", views.history_answer, name="history-answer"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("tokens/new/", views.token_new, name="token-new"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
]
