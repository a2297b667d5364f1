DROP TABLE directory_alerts;
