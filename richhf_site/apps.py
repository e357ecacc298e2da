"""App configs of the site package: its own models (API tokens) and the admin site that
lets the admin role in, however the role was granted."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class RichHFSiteConfig(AppConfig):
    name = "richhf_site"
    label = "richhf_site"
    verbose_name = "Access"
    default = True
    default_auto_field = "django.db.models.BigAutoField"


class RichHFAdminConfig(admin_apps.AdminConfig):
    """Replaces "django.contrib.admin" in INSTALLED_APPS (settings, "hardening: access")."""

    default = False
    default_site = "richhf_site.admin_site.RichHFAdminSite"
