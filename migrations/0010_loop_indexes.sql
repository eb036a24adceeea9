CREATE INDEX "activations_unwarned_end" ON "activations" USING btree ("end_at") WHERE status = 'active' and kind = 'activation' and expiry_warned_at is null;--> statement-breakpoint
CREATE INDEX "principals_admins" ON "principals" USING btree ("id") WHERE is_admin;--> statement-breakpoint
CREATE INDEX "eligibilities_end" ON "eligibilities" USING btree ("end_at") WHERE end_at is not null;