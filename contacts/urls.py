from django.urls import path
from rest_framework.routers import SimpleRouter

from .export_views import ContactExportView
from .views import ContactViewSet, CustomFieldViewSet, TagViewSet

router = SimpleRouter(trailing_slash=False)
router.register("contacts", ContactViewSet, basename="contact")
router.register("custom-fields", CustomFieldViewSet, basename="custom-field")
router.register("tags", TagViewSet, basename="tag")
# Before the router's routes: `contacts/{id}` must never see "export" as an id.
urlpatterns = [path("contacts/export", ContactExportView.as_view(), name="contact-export"), *router.urls]
