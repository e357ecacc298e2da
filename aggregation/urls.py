from django.urls import path  # noqa: F401 - patterns arrive with the aggregation API

app_name = "aggregation"

urlpatterns: list = []
