DROP TABLE resync_confirmations;
DROP TABLE directory_resyncs;
