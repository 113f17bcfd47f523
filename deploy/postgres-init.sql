-- Run once by the postgres image on an empty volume (docker-compose.yml).
-- The SIS database stands in for the university's SIS; the worker reads it
-- as sis_reader, a role that can only SELECT (granted by `sisnotify demo
-- --reader sis_reader`). The worker's own database belongs to sisnotify.
CREATE ROLE sis_reader LOGIN PASSWORD 'sis-reader-dev';
CREATE ROLE sisnotify LOGIN PASSWORD 'sisnotify-dev';
CREATE DATABASE sis;
CREATE DATABASE sisnotify OWNER sisnotify;
GRANT CONNECT ON DATABASE sis TO sis_reader;
