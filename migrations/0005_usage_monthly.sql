-- Monthly totals per tenant, kept by a trigger in the transaction of each usage event, so that a monthly
-- quota check reads one row. Filled from the events recorded so far.
CREATE TABLE `usage_monthly` (
	`tenant_id` text NOT NULL,
	`month` text NOT NULL,
	`quantity` integer NOT NULL,
	PRIMARY KEY(`tenant_id`, `month`)
);
--> statement-breakpoint
INSERT INTO `usage_monthly` (`tenant_id`, `month`, `quantity`)
SELECT `tenant_id`, strftime('%Y-%m', `created_at`, 'unixepoch'), sum(`quantity`) FROM `usage_events` GROUP BY 1, 2;
--> statement-breakpoint
CREATE TRIGGER `usage_monthly_add` AFTER INSERT ON `usage_events`
BEGIN
  INSERT INTO `usage_monthly` (`tenant_id`, `month`, `quantity`)
  VALUES (NEW.`tenant_id`, strftime('%Y-%m', NEW.`created_at`, 'unixepoch'), NEW.`quantity`)
  ON CONFLICT (`tenant_id`, `month`) DO UPDATE SET `quantity` = `quantity` + excluded.`quantity`;
END;
