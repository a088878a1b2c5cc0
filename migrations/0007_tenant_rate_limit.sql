CREATE TABLE `rate_windows` (
	`tenant_id` text PRIMARY KEY NOT NULL,
	`window_start` integer NOT NULL,
	`count` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `tenants` ADD `requests_per_minute` integer;