from django.contrib import admin

from customers.models import CustomerLink
from integrations.admin import ReadOnlyAdmin


@admin.register(CustomerLink)
class CustomerLinkAdmin(ReadOnlyAdmin):
    list_display = (
        "znode_user_id",
        "stripe_customer_id",
        "email",
        "integration",
        "znode_synced_at",
        "stripe_synced_at",
        "created_at",
    )
    list_filter = ("integration",)
    search_fields = ("=znode_user_id", "=stripe_customer_id", "=email")
