from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from customers.jobs import customer_sync_job_file
from customers.models import (
    CustomerBackfill,
    CustomerConflict,
    CustomerLink,
    CustomerSweep,
    MatchedBy,
    RejectedCustomer,
    SavedCard,
)
from customers.selectors import customer_sync_running
from integrations.admin import ReadOnlyAdmin, ReadOnlyInline, permission_check
from integrations.kernel.exceptions import IntegrationError


class SavedCardInline(ReadOnlyInline):
    model = SavedCard
    fields = ("brand", "last4", "exp_month", "exp_year", "is_default", "stripe_payment_method_id")
    verbose_name = "saved card (as Stripe lists it)"


class ConflictInline(ReadOnlyInline):
    model = CustomerConflict
    fields = ("created_at", "field", "znode_value", "stripe_value", "winner", "rule", "reviewed_at")


@admin.register(CustomerLink)
class CustomerLinkAdmin(ReadOnlyAdmin):
    list_display = (
        "znode_user_id",
        "stripe_customer_id",
        "email",
        "integration",
        "matched_by",
        "znode_synced_at",
        "stripe_synced_at",
        "created_at",
    )
    list_filter = ("integration", "matched_by")
    search_fields = ("=znode_user_id", "=stripe_customer_id", "=email")
    inlines = (SavedCardInline, ConflictInline)
    actions = ("confirm_match", "unlink")

    has_confirm_permission = permission_check("customers.confirm_customerlink")
    has_unlink_permission = permission_check("customers.delete_customerlink")

    @admin.action(
        description="Confirm the email match (the customer is this user's: saved cards may "
        "be charged, our metadata is written)",
        permissions=["confirm"],
    )
    def confirm_match(self, request, queryset):
        count = 0
        for link in queryset.filter(matched_by=MatchedBy.EMAIL):
            link.matched_by = MatchedBy.CONFIRMED
            link._change_reason = f"email match confirmed by {request.user.get_username()}"
            link.save(update_fields=["matched_by", "updated_at"])
            count += 1
            # Now its profile and cards may cross: a sync job does it.
            try:
                customer_sync_job_file(
                    integration=link.integration,
                    user_id=link.znode_user_id,
                    portal_id=link.znode_portal_id,
                    why="confirmed",
                )
            except IntegrationError as error:
                self.message_user(request, f"no sync job filed: {error}", messages.WARNING)
        self.message_user(request, f"{count} link(s) confirmed.", messages.SUCCESS)

    @admin.action(
        description="Unlink (its Stripe customer is gone or not this user's: it is never "
        "found for the user again, the next sync finds or makes another; history is kept)",
        permissions=["unlink"],
    )
    def unlink(self, request, queryset):
        count, busy = 0, []
        who = request.user.get_username()
        for link in queryset:
            if customer_sync_running(link):
                busy.append(str(link.znode_user_id))
                continue
            with transaction.atomic():
                # Never found for this user again (our metadata may still name them).
                RejectedCustomer.objects.get_or_create(
                    integration=link.integration,
                    znode_user_id=link.znode_user_id,
                    stripe_customer_id=link.stripe_customer_id,
                    defaults={"rejected_by": who[:150]},
                )
                link._change_reason = f"unlinked by {who}"
                link.delete()
            count += 1
        self.message_user(request, f"{count} link(s) removed.", messages.SUCCESS)
        if busy:
            self.message_user(
                request,
                f"being synced right now, try again in a moment: Znode user(s) {', '.join(busy)}",
                messages.WARNING,
            )


@admin.register(CustomerConflict)
class CustomerConflictAdmin(ReadOnlyAdmin):
    """Both sides changed a field: the rule picked a value; an operator checks it."""

    list_display = (
        "created_at",
        "link",
        "field",
        "znode_value",
        "stripe_value",
        "winner",
        "rule",
        "reviewed_at",
    )
    list_filter = ("field", "winner", "rule", ("reviewed_at", admin.EmptyFieldListFilter))
    search_fields = ("=link__znode_user_id", "=link__stripe_customer_id", "link__email")
    list_select_related = ("link",)
    actions = ("mark_reviewed",)

    has_review_permission = permission_check("customers.review_customerconflict")

    @admin.action(description="Mark reviewed", permissions=["review"])
    def mark_reviewed(self, request, queryset):
        count = queryset.filter(reviewed_at__isnull=True).update(
            reviewed_at=timezone.now(), reviewed_by=request.user.get_username()[:150]
        )
        self.message_user(request, f"{count} conflict(s) marked reviewed.", messages.SUCCESS)


@admin.register(CustomerBackfill)
class CustomerBackfillAdmin(ReadOnlyAdmin):
    list_display = ("integration", "since", "after_user_id", "counts", "started_at", "finished_at")


@admin.register(CustomerSweep)
class CustomerSweepAdmin(ReadOnlyAdmin):
    list_display = ("integration", "after_user_id", "swept_at")


@admin.register(RejectedCustomer)
class RejectedCustomerAdmin(ReadOnlyAdmin):
    list_display = (
        "integration",
        "znode_user_id",
        "stripe_customer_id",
        "rejected_by",
        "created_at",
    )
    search_fields = ("=znode_user_id", "=stripe_customer_id")
