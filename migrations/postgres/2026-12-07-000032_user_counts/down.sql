DROP TABLE directory_user_counts;
