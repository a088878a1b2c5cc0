CREATE TABLE `prices` (
	`kind` text NOT NULL,
	`model` text NOT NULL,
	`usd_per_million` real NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`kind`, `model`)
);
