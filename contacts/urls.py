from django.urls import path
from rest_framework.routers import SimpleRouter

from .consent_views import ContactTrashViewSet, InboundView, SuppressionViewSet
from .export_job_views import ExportViewSet
from .export_views import ContactExportView
from .views import ContactViewSet, CustomFieldViewSet, TagViewSet

router = SimpleRouter(trailing_slash=False)
router.register("contacts", ContactViewSet, basename="contact")
router.register("custom-fields", CustomFieldViewSet, basename="custom-field")
# Issue 10 (consent): contacts/trash, contacts/deleted, contacts/{id}/restore|consent|gdpr-export|erase.
router.register("contacts", ContactTrashViewSet, basename="contact-trash")
router.register("suppressions", SuppressionViewSet, basename="suppression")
router.register("tags", TagViewSet, basename="tag")
router.register("exports", ExportViewSet, basename="export")
# Before the router's routes: `contacts/{id}` must never see "export" as an id.
urlpatterns = [path("contacts/export", ContactExportView.as_view(), name="contact-export"),
               path("inbound", InboundView.as_view(), name="inbound"), *router.urls]
