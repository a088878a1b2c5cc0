-- usage_events gets an explicit commit-order key (seq) for the usage export's cursor; SQLite's implicit rowid
-- could be renumbered by VACUUM. Existing events keep their order. No PRAGMA foreign_keys here: D1 does not
-- allow turning it off, and no table references usage_events.
CREATE TABLE `__new_usage_events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`idempotency_key` text NOT NULL,
	`tenant_id` text NOT NULL,
	`kind` text NOT NULL,
	`model` text NOT NULL,
	`quantity` integer NOT NULL,
	`ref` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
INSERT INTO `__new_usage_events`("seq", "id", "idempotency_key", "tenant_id", "kind", "model", "quantity", "ref", "created_at") SELECT rowid, "id", "idempotency_key", "tenant_id", "kind", "model", "quantity", "ref", "created_at" FROM `usage_events` ORDER BY rowid;--> statement-breakpoint
DROP TABLE `usage_events`;--> statement-breakpoint
ALTER TABLE `__new_usage_events` RENAME TO `usage_events`;--> statement-breakpoint
CREATE UNIQUE INDEX `usage_events_id_unique` ON `usage_events` (`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `usage_idem_idx` ON `usage_events` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `usage_tenant_time_idx` ON `usage_events` (`tenant_id`,`created_at`);