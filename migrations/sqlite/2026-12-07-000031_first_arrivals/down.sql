DROP TABLE directory_arrivals;
