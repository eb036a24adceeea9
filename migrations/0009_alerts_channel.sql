CREATE TABLE "teams_conversations" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant" text NOT NULL,
	"service_url" text NOT NULL,
	"conversation_type" text NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "chat_messages" ADD COLUMN "alert_id" uuid;--> statement-breakpoint
ALTER TABLE "alerts" ADD COLUMN "resolution" text;--> statement-breakpoint
ALTER TABLE "chat_messages" ADD CONSTRAINT "chat_messages_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "chat_messages_alert_id_index" ON "chat_messages" USING btree ("alert_id");