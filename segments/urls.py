from rest_framework.routers import SimpleRouter

from .views import ContactListViewSet, SegmentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("lists", ContactListViewSet, basename="list")
router.register("segments", SegmentViewSet, basename="segment")
urlpatterns = router.urls
