DROP TABLE attribute_mappings;
DROP TABLE custom_attributes;
