BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0007');
CREATE TABLE client_keys (
	client_id VARCHAR(128) NOT NULL, 
	kid VARCHAR(128) NOT NULL, 
	alg VARCHAR(16) NOT NULL, 
	jwk JSON NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	CONSTRAINT pk_client_keys PRIMARY KEY (client_id, kid), 
	CONSTRAINT ck_client_keys_status CHECK (status IN ('active', 'revoked')), 
	CONSTRAINT fk_client_keys_client_id_clients FOREIGN KEY(client_id) REFERENCES clients (id)
);
INSERT INTO "client_keys" VALUES('VN/GOV/TEST/integration','wC7oBmqpE_lfJG0Ap46LVzqDax4-Hnzp1twfv4hWJsU','EdDSA','{"crv": "Ed25519", "x": "Mw-NZxofmcTh99yPhJc3cvh6LB-Y4aGPnruXxZPKJOk", "kty": "OKP"}','active','2026-12-06 00:30:54.280692',NULL);
INSERT INTO "client_keys" VALUES('VN/GOV/CAHN/investigation','JD-m-kvJHmH0dEgJzaQmjAuX4MSimFz-YX5dC3NZAQs','EdDSA','{"crv": "Ed25519", "x": "6qPq4YtBKzRmRR9l36T3RGoB2dVkZQcClVAgKA-rMKo", "kty": "OKP"}','active','2026-12-06 00:30:54.595993',NULL);
CREATE TABLE clients (
	id VARCHAR(128) NOT NULL, 
	name TEXT NOT NULL, 
	organisation TEXT NOT NULL, 
	agency_kinds JSON NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	CONSTRAINT pk_clients PRIMARY KEY (id), 
	CONSTRAINT ck_clients_status CHECK (status IN ('active', 'suspended'))
);
INSERT INTO "clients" VALUES('VN/GOV/TEST/integration','Integration tests','Test agency','["business_registration_office", "commune_peoples_committee", "commune_police", "construction_authority", "education", "health", "land_registration_office", "provincial_justice_department", "provincial_police", "social_insurance", "social_protection", "tax_authority", "traffic_police"]','active','2026-12-06 00:30:54.274051','2026-12-06 00:30:54.274051');
INSERT INTO "clients" VALUES('VN/GOV/CAHN/investigation','Integration tests','Hanoi City Police','["provincial_police"]','active','2026-12-06 00:30:54.589801','2026-12-06 00:30:55.141005');
CREATE TABLE connectors (
	name VARCHAR(40) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	title TEXT DEFAULT '' NOT NULL, 
	agency TEXT DEFAULT '' NOT NULL, 
	version INTEGER NOT NULL, 
	manifest JSON NOT NULL, 
	manifest_sha256 VARCHAR(64) NOT NULL, 
	origin TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	registered_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	CONSTRAINT pk_connectors PRIMARY KEY (name), 
	CONSTRAINT ck_connectors_status CHECK (status IN ('active', 'removed')), 
	CONSTRAINT ck_connectors_version CHECK (version >= 1)
);
INSERT INTO "connectors" VALUES('business','rest','Cơ sở dữ liệu quốc gia về đăng ký doanh nghiệp (sandbox)','VN/GOV/BTC/DKKD',1,'{"name": "business", "kind": "rest", "title": "C\u01a1 s\u1edf d\u1eef li\u1ec7u qu\u1ed1c gia v\u1ec1 \u0111\u0103ng k\u00fd doanh nghi\u1ec7p (sandbox)", "agency": "VN/GOV/BTC/DKKD", "base_url": "http://127.0.0.1:8102", "timeout_seconds": 2.0, "retries": 1, "max_concurrency": 64, "priority": 10, "health_path": "/healthz", "max_response_bytes": 16777216, "entities": {"Business": {"key_field": "ma_so_doanh_nghiep", "get": "/v1/doanh-nghiep/{key}", "batch": {"path": "/v1/doanh-nghiep/tra-cuu", "keys_field": "danh_sach", "fields_field": "truong", "results_field": "ket_qua", "max_size": 100}, "fields_param": "truong", "many": false, "list_field": null, "fields": {"enterpriseCode": "ma_so_doanh_nghiep", "name": "ten_doanh_nghiep", "foreignName": "ten_nuoc_ngoai", "shortName": "ten_viet_tat", "legalForm": "loai_hinh", "registrationDate": "ngay_thanh_lap", "status": {"from": "tinh_trang", "values": {"\u0110ang ho\u1ea1t \u0111\u1ed9ng": "ACTIVE", "T\u1ea1m ng\u1eebng kinh doanh": "SUSPENDED", "\u0110ang l\u00e0m th\u1ee7 t\u1ee5c gi\u1ea3i th\u1ec3": "DISSOLVING", "\u0110\u00e3 gi\u1ea3i th\u1ec3": "DISSOLVED", "Ph\u00e1 s\u1ea3n": "BANKRUPT"}, "fields": null}, "headOffice": {"from": "dia_chi_tru_so", "values": null, "fields": {"provinceCode": "ma_tinh", "provinceName": "ten_tinh", "wardCode": "ma_xa", "wardName": "ten_xa", "detail": "chi_tiet", "legacyText": "dia_chi_cu", "validFrom": "hieu_luc_tu"}}, "charterCapital": "von_dieu_le", "mainIndustry": {"from": "nganh_nghe_chinh", "values": null, "fields": {"code": "ma", "name": "ten"}}, "legalRepresentative": {"from": "nguoi_dai_dien_phap_luat", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "legalRepresentativeTitle": "nguoi_dai_dien_phap_luat.chuc_danh"}}}}','cfd12b952870b9e2d29eb68122067c64129804441afa295f185682739d7cdd9e','/work/main/sandbox/manifests','active','2026-12-06 00:30:54.544408','2026-12-06 00:30:54.544408');
INSERT INTO "connectors" VALUES('population','rest','Cơ sở dữ liệu quốc gia về dân cư (sandbox)','VN/GOV/BCA/C06',1,'{"name": "population", "kind": "rest", "title": "C\u01a1 s\u1edf d\u1eef li\u1ec7u qu\u1ed1c gia v\u1ec1 d\u00e2n c\u01b0 (sandbox)", "agency": "VN/GOV/BCA/C06", "base_url": "http://127.0.0.1:8101", "timeout_seconds": 2.0, "retries": 1, "max_concurrency": 64, "priority": 10, "health_path": "/healthz", "max_response_bytes": 16777216, "entities": {"Citizen": {"key_field": "so_dinh_danh", "get": "/v1/cong-dan/{key}", "batch": {"path": "/v1/cong-dan/tra-cuu", "keys_field": "danh_sach", "fields_field": "truong", "results_field": "ket_qua", "max_size": 100}, "fields_param": "truong", "many": false, "list_field": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten", "otherNames": "ten_goi_khac", "birthDate": "ngay_sinh", "gender": {"from": "gioi_tinh", "values": {"Nam": "MALE", "N\u1eef": "FEMALE"}, "fields": null}, "birthRegistrationPlace": {"from": "noi_dang_ky_khai_sinh", "values": null, "fields": {"provinceCode": "ma_tinh", "provinceName": "ten_tinh", "wardCode": "ma_xa", "wardName": "ten_xa", "detail": "chi_tiet", "legacyText": "dia_chi_cu", "validFrom": "hieu_luc_tu"}}, "hometown": "que_quan", "ethnicity": {"from": "dan_toc", "values": null, "fields": {"code": "ma", "name": "ten"}}, "religion": "ton_giao", "nationality": "quoc_tich", "bloodType": "nhom_mau", "legacyIdNumber": "so_cmnd", "maritalStatus": {"from": "tinh_trang_hon_nhan", "values": {"\u0110\u1ed9c th\u00e2n": "SINGLE", "\u0110\u00e3 k\u1ebft h\u00f4n": "MARRIED", "Ly h\u00f4n": "DIVORCED", "G\u00f3a": "WIDOWED"}, "fields": null}, "permanentResidence": {"from": "noi_thuong_tru", "values": null, "fields": {"provinceCode": "ma_tinh", "provinceName": "ten_tinh", "wardCode": "ma_xa", "wardName": "ten_xa", "detail": "chi_tiet", "legacyText": "dia_chi_cu", "validFrom": "hieu_luc_tu"}}, "temporaryResidence": {"from": "noi_tam_tru", "values": null, "fields": {"provinceCode": "ma_tinh", "provinceName": "ten_tinh", "wardCode": "ma_xa", "wardName": "ten_xa", "detail": "chi_tiet", "legacyText": "dia_chi_cu", "validFrom": "hieu_luc_tu"}}, "currentResidence": {"from": "noi_o_hien_tai", "values": null, "fields": {"provinceCode": "ma_tinh", "provinceName": "ten_tinh", "wardCode": "ma_xa", "wardName": "ten_xa", "detail": "chi_tiet", "legacyText": "dia_chi_cu", "validFrom": "hieu_luc_tu"}}, "temporaryAbsence": {"from": "tam_vang", "values": null, "fields": {"from": "tu_ngay", "to": "den_ngay", "destination": "noi_den"}}, "household": {"from": "ho_gia_dinh", "values": null, "fields": {"householdId": "ma_ho", "head": {"from": "chu_ho", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "address": {"from": "dia_chi", "values": null, "fields": {"provinceCode": "ma_tinh", "provinceName": "ten_tinh", "wardCode": "ma_xa", "wardName": "ten_xa", "detail": "chi_tiet", "legacyText": "dia_chi_cu", "validFrom": "hieu_luc_tu"}}, "members": {"from": "thanh_vien", "values": null, "fields": {"person": {"from": "cong_dan", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "relationToHead": "quan_he_voi_chu_ho"}}}}, "relationToHead": "quan_he_voi_chu_ho", "father": {"from": "cha", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "mother": {"from": "me", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "spouse": {"from": "vo_chong", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "legalRepresentative": {"from": "nguoi_dai_dien", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "children": {"from": "con", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "represented": {"from": "nguoi_duoc_dai_dien", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "phone": "so_dien_thoai", "email": "thu_dien_tu", "vitalStatus": {"from": "tinh_trang", "values": {"C\u00f2n s\u1ed1ng": "ALIVE", "\u0110\u00e3 m\u1ea5t": "DECEASED", "M\u1ea5t t\u00edch": "MISSING"}, "fields": null}, "deathDate": "ngay_mat"}}, "Household": {"key_field": "ma_ho", "get": "/v1/ho-gia-dinh/{key}", "batch": {"path": "/v1/ho-gia-dinh/tra-cuu", "keys_field": "danh_sach", "fields_field": "truong", "results_field": "ket_qua", "max_size": 100}, "fields_param": "truong", "many": false, "list_field": null, "fields": {"householdId": "ma_ho", "head": {"from": "chu_ho", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "address": {"from": "dia_chi", "values": null, "fields": {"provinceCode": "ma_tinh", "provinceName": "ten_tinh", "wardCode": "ma_xa", "wardName": "ten_xa", "detail": "chi_tiet", "legacyText": "dia_chi_cu", "validFrom": "hieu_luc_tu"}}, "members": {"from": "thanh_vien", "values": null, "fields": {"person": {"from": "cong_dan", "values": null, "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"}}, "relationToHead": "quan_he_voi_chu_ho"}}}}}}','0f75919b05e8141fc32e0d7cee685a395f1c28e8f14427ab78e59a49a6f64e80','/work/main/sandbox/manifests','active','2026-12-06 00:30:54.544408','2026-12-06 00:30:54.544408');
CREATE TABLE consents (
	id VARCHAR(32) NOT NULL, 
	subject VARCHAR(16) NOT NULL, 
	consumer VARCHAR(128) NOT NULL, 
	procedure VARCHAR(64) NOT NULL, 
	fields JSON NOT NULL, 
	"case" TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	requested_at DATETIME NOT NULL, 
	answer_by DATETIME NOT NULL, 
	valid_until DATETIME NOT NULL, 
	decided_at DATETIME, 
	revoked_at DATETIME, 
	grant TEXT, 
	revocation TEXT, 
	CONSTRAINT pk_consents PRIMARY KEY (id), 
	CONSTRAINT ck_consents_status CHECK (status IN ('REQUESTED', 'ACTIVE', 'DENIED', 'REVOKED', 'EXPIRED'))
);
INSERT INTO "consents" VALUES('e9eff0ff14184d23a361abc1310b2227','024194409658','VN/GOV/TEST/integration','1.004222','["Citizen.phone"]','CASE-2026-0001','REVOKED','2026-12-06 00:30:54.929298','2026-12-13 00:30:54.929298','2026-12-28 00:30:54.719068','2026-12-06 00:30:55.069927','2026-12-06 00:30:55.077699','eyJhbGciOiJFZERTQSIsImtpZCI6InhIUjA5Nk5mMkYwUEpuSlJER1BpbHp1RS1vdjlfZDMzOUVkQVZiQmNJbVkiLCJ0eXAiOiJndy1jb25zZW50K2p3cyJ9..e9UoH7z7agikyTXNpUL1wEJk8NSrvbrqIyf5UV0ecw_kGL7lLbbwEtf8g9MWBjVrX2Qp2ubQEXy_Zc3wucTcAg','eyJhbGciOiJFZERTQSIsImtpZCI6InhIUjA5Nk5mMkYwUEpuSlJER1BpbHp1RS1vdjlfZDMzOUVkQVZiQmNJbVkiLCJ0eXAiOiJndy1jb25zZW50K2p3cyJ9..W2pnxW-j5rmHfESYYHEefs9dqpAW4A32EFxpV3Zu4Z9RajYCGVxUCRgCOFcqmw7lFM9ZpTbjJZCNSt5D1PddBg');
CREATE TABLE event_decisions (
	decision VARCHAR(40) NOT NULL, 
	event_id VARCHAR(32) NOT NULL, 
	ts DATETIME NOT NULL, 
	CONSTRAINT pk_event_decisions PRIMARY KEY (decision, event_id), 
	CONSTRAINT fk_event_decisions_event_id_events FOREIGN KEY(event_id) REFERENCES events (id)
);
INSERT INTO "event_decisions" VALUES('ALLOWED_BY_LAW','5afb74b384c1482ca55daf9eb5820cac','2026-12-06 00:30:54.664461');
INSERT INTO "event_decisions" VALUES('CONSENT_REQUIRED','5afb74b384c1482ca55daf9eb5820cac','2026-12-06 00:30:54.664461');
INSERT INTO "event_decisions" VALUES('ALLOWED_BY_LAW','3b80c750c8bd454e9a4e253acfed634b','2026-12-06 00:30:54.713716');
INSERT INTO "event_decisions" VALUES('ALLOWED_BY_LAW','c3fd29333d7f42ff82f5abc15bf4db7b','2026-12-06 00:30:54.788877');
INSERT INTO "event_decisions" VALUES('ALLOWED_BY_LAW','7045f68d53a14ee9a1e78201e608d95c','2026-12-06 00:30:54.836715');
INSERT INTO "event_decisions" VALUES('CONSENT_REQUIRED','7045f68d53a14ee9a1e78201e608d95c','2026-12-06 00:30:54.836715');
INSERT INTO "event_decisions" VALUES('ALLOWED_BY_LAW','7c77c8cdee15469e8cf821b8231a11a5','2026-12-06 00:30:54.878510');
INSERT INTO "event_decisions" VALUES('ALLOWED_BY_LAW','267272198a3e48619d3cf559313ed82d','2026-12-06 00:30:55.122517');
INSERT INTO "event_decisions" VALUES('CONSENT_REQUIRED','267272198a3e48619d3cf559313ed82d','2026-12-06 00:30:55.122517');
CREATE TABLE event_personal (
	event_id VARCHAR(32) NOT NULL, 
	salt VARCHAR(32) NOT NULL, 
	personal JSON NOT NULL, 
	CONSTRAINT pk_event_personal PRIMARY KEY (event_id), 
	CONSTRAINT fk_event_personal_event_id_events FOREIGN KEY(event_id) REFERENCES events (id)
);
INSERT INTO "event_personal" VALUES('5afb74b384c1482ca55daf9eb5820cac','0a35be7e2ca9f5525400b79a1f0a7f33','{"subjects": ["030084367147"], "officer": "officer-7", "case": "CASE-2026-0001", "operation": null, "token": "eyJhbGciOiJFZERTQSIsInR5cCI6Imd3LXJlcXVlc3Qrand0Iiwia2lkIjoid0M3b0JtcXBFX2xmSkcwQXA0NkxWenFEYXg0LUhuenAxdHdmdjRoV0pzVSJ9.eyJpc3MiOiJWTi9HT1YvVEVTVC9pbnRlZ3JhdGlvbiIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMCIsImlhdCI6MTc5NjUxNzA1NCwiZXhwIjoxNzk2NTE3MTc0LCJqdGkiOiJkMTJiMWM3NGU5NGE0NzMwYmZjNzA5YmRkNzdjZjdlNyIsInJlcSI6ImpvRTBhcm1NQTVFOGFkWlYyY2xCOV82RVgzb3V5cUU3Nmk1UXRFSTM2UFUiLCJwdXJwb3NlIjp7InByb2NlZHVyZSI6IjEuMDA0MjIyIiwiY2FzZSI6IkNBU0UtMjAyNi0wMDAxIiwib2ZmaWNlciI6Im9mZmljZXItNyIsInN1YmplY3RzIjpbIjAzMDA4NDM2NzE0NyJdfX0.teiROEyJFzE8UuoXrQIBESKUoAs5CDpoSMU4p2o1OiTR8OcCIxyF8QG2J6y5tA0Eqf5VmoRsE9TG9Uw7mx3_Aw"}');
INSERT INTO "event_personal" VALUES('3b80c750c8bd454e9a4e253acfed634b','398022b6a3b5db7f24e489551212f2f2','{"subjects": ["024194409658"], "officer": "officer-b", "case": "HS-B", "operation": null, "token": "eyJhbGciOiJFZERTQSIsInR5cCI6Imd3LXJlcXVlc3Qrand0Iiwia2lkIjoid0M3b0JtcXBFX2xmSkcwQXA0NkxWenFEYXg0LUhuenAxdHdmdjRoV0pzVSJ9.eyJpc3MiOiJWTi9HT1YvVEVTVC9pbnRlZ3JhdGlvbiIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMCIsImlhdCI6MTc5NjUxNzA1NCwiZXhwIjoxNzk2NTE3MTc0LCJqdGkiOiIxZGQxODViZjhmOWY0YzI1YWYxZjYzNGZlYTVhOTg4NCIsInJlcSI6ImZqRXBFYmt6WkxGNW1FUXlzQXNyeWtSOUE1TGxMTUZrbjZmZWxScVMzUzQiLCJwdXJwb3NlIjp7InByb2NlZHVyZSI6IjEuMDA0MjIyIiwiY2FzZSI6IkhTLUIiLCJvZmZpY2VyIjoib2ZmaWNlci1iIiwic3ViamVjdHMiOlsiMDI0MTk0NDA5NjU4Il19fQ.6GYOo0slfQ6dFMfBCMx4TaPOplBtdJQGt3R2b5_iCEOgyABxboLf5SnXaphUBYpIixGW8bL4_0vnA-ay_NnADQ"}');
INSERT INTO "event_personal" VALUES('1f9a35bd7974482790d5e2f009405d5e','ee11b132469ff41a8ab7a5669ad03199','{"subjects": [], "officer": "officer-7", "case": null, "operation": null, "token": "eyJhbGciOiJFZERTQSIsInR5cCI6Imd3LXJlcXVlc3Qrand0Iiwia2lkIjoid0M3b0JtcXBFX2xmSkcwQXA0NkxWenFEYXg0LUhuenAxdHdmdjRoV0pzVSJ9.eyJpc3MiOiJWTi9HT1YvVEVTVC9pbnRlZ3JhdGlvbiIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMCIsImlhdCI6MTc5NjUxNzA1NCwiZXhwIjoxNzk2NTE3MTc0LCJqdGkiOiJlZTAyNTAzMTdjMTM0OWEwYmM2ZTFjYjQwMGZkZGEzNyIsInJlcSI6ImtUUWswZU1laldEMUVXNzdQU1pfdUNJb0M3UEptY1ZuLTRGQWdqWXoxMFkiLCJwdXJwb3NlIjp7InByb2NlZHVyZSI6IjEuMDA0MjIyIiwiY2FzZSI6IkNBU0UtMjAyNi0wMDAxIiwib2ZmaWNlciI6Im9mZmljZXItNyIsInN1YmplY3RzIjpbIjAzMDA4NDM2NzE0NyJdLCJoaWRkZW5VbnRpbCI6IjIwMjYtMTItMDhUMDA6MzA6NTQuNzE5MDY4WiJ9fQ.PLL-w0fxo0e4n7NsjgYmn9QZug4Nlm1aT8DLOFBT2ETj_tNsaJCKmYbbTCjQEIQ_uWZzmVJ0MgLNLSNQWSGDBQ"}');
INSERT INTO "event_personal" VALUES('7045f68d53a14ee9a1e78201e608d95c','51ff6b9cbea557e84c50ccbd223111ca','{"subjects": ["030084367147"], "officer": "officer-7", "case": "CASE-2026-0001", "operation": null, "token": "eyJhbGciOiJFZERTQSIsInR5cCI6Imd3LXJlcXVlc3Qrand0Iiwia2lkIjoid0M3b0JtcXBFX2xmSkcwQXA0NkxWenFEYXg0LUhuenAxdHdmdjRoV0pzVSJ9.eyJpc3MiOiJWTi9HT1YvVEVTVC9pbnRlZ3JhdGlvbiIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMCIsImlhdCI6MTc5NjUxNzA1NCwiZXhwIjoxNzk2NTE3MTc0LCJqdGkiOiJlOThhZTg3ZGVkNTc0MTlhYWJhODBkZGJiMjZkNmUwYiIsInJlcSI6IjRHS2ZhcEJnWkZkNThoTF93ZWVkMnA2Mkc1VWlxRzJrVnJWQUVpZDhFdTQiLCJwdXJwb3NlIjp7InByb2NlZHVyZSI6IjEuMDA0MjIyIiwiY2FzZSI6IkNBU0UtMjAyNi0wMDAxIiwib2ZmaWNlciI6Im9mZmljZXItNyIsInN1YmplY3RzIjpbIjAzMDA4NDM2NzE0NyJdfX0.gEKFBYZsEOF8MDuhhpieuMiYS3khkg7xAYLQkKu368Y94JvQxGUj-rZ4b-Y3X1fOpUqXq51N6iD7-DETJb5ACw"}');
INSERT INTO "event_personal" VALUES('7c77c8cdee15469e8cf821b8231a11a5','822d2cb341b1e90c0ed2f719ffde2074','{"subjects": ["0164739618"], "officer": "officer-7", "case": "CASE-2026-0001", "operation": null, "token": "eyJhbGciOiJFZERTQSIsInR5cCI6Imd3LXJlcXVlc3Qrand0Iiwia2lkIjoid0M3b0JtcXBFX2xmSkcwQXA0NkxWenFEYXg0LUhuenAxdHdmdjRoV0pzVSJ9.eyJpc3MiOiJWTi9HT1YvVEVTVC9pbnRlZ3JhdGlvbiIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMCIsImlhdCI6MTc5NjUxNzA1NCwiZXhwIjoxNzk2NTE3MTc0LCJqdGkiOiIwMDEyZGU0MDI0YjM0NDNiOWNhOWJjZWQ2Y2Q3ZWE4YSIsInJlcSI6IkNlOGZNM093by0zZUg1YVNjVk9UdzIzLWFpZERZT3gyNWJ2QkZVQUdPNFUiLCJwdXJwb3NlIjp7InByb2NlZHVyZSI6IkxPQ0FMLnRlc3QtZXZlcnktZmllbGQiLCJjYXNlIjoiQ0FTRS0yMDI2LTAwMDEiLCJvZmZpY2VyIjoib2ZmaWNlci03Iiwic3ViamVjdHMiOlsiMDE2NDczOTYxOCJdfX0.bqgoeEhi52ZWkoHl1OfXHvVoiSIEAzU9PseCz_c6agMT_WIVZrpaph2mc1rnsCZxKcj2b_KIXA57k4VcSxWtBA"}');
INSERT INTO "event_personal" VALUES('7f8ed40fd5ce43eabbc36c9ade25e4db','c8fb2ba3f52fc131cbfacbbd8b7d0066','{"subject": "024194409658", "case": "CASE-2026-0001"}');
INSERT INTO "event_personal" VALUES('fb288d80bb42414a800eb93fe1e67b02','af4225576374ce7426588f6f5f1e62bd','{"subjects": ["024194409658"], "officer": "officer-7", "case": "CASE-2026-0001", "operation": null, "token": "eyJhbGciOiJFZERTQSIsInR5cCI6Imd3LXJlcXVlc3Qrand0Iiwia2lkIjoid0M3b0JtcXBFX2xmSkcwQXA0NkxWenFEYXg0LUhuenAxdHdmdjRoV0pzVSJ9.eyJpc3MiOiJWTi9HT1YvVEVTVC9pbnRlZ3JhdGlvbiIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMCIsImlhdCI6MTc5NjUxNzA1NCwiZXhwIjoxNzk2NTE3MTc0LCJqdGkiOiI5MTQxNGQ1MTQ0MWE0OGE2OGJhYWMxMWMwODlhY2EyOSIsInJlcSI6IndzdktXaW9kZ1NWWlNrNXVadlo1Z3djVDhRZGVXazRRYVRjLUlBWjhFanciLCJwdXJwb3NlIjp7InByb2NlZHVyZSI6IjEuMDA0MjIyIiwiY2FzZSI6IkNBU0UtMjAyNi0wMDAxIiwib2ZmaWNlciI6Im9mZmljZXItNyIsInN1YmplY3RzIjpbIjAyNDE5NDQwOTY1OCJdfX0.t0RYEUm0ph8AvqAay_YjPf8JpU4RgrhYfMfs5AE7Gx7R9PBvKzlQ0N9pG2iyp3_pHhuknMHBOJ951hvTIarxAw"}');
INSERT INTO "event_personal" VALUES('cc9ced4ec3614a7dac03851d9dd0ce6a','5b57ae524188e252bdde18c8b2e5684e','{"subject": "024194409658", "case": "CASE-2026-0001"}');
INSERT INTO "event_personal" VALUES('1b7b680e8c844d568209df85bd95886e','e1be56b4213eb9d01f29c9140b53f4ec','{"subject": "024194409658", "case": "CASE-2026-0001"}');
INSERT INTO "event_personal" VALUES('267272198a3e48619d3cf559313ed82d','6e98b636cc3748f28f0a7b1f21a16e99','{"subjects": ["024194409658"], "officer": "officer-7", "case": "CASE-2026-0001", "operation": null, "token": "eyJhbGciOiJFZERTQSIsInR5cCI6Imd3LXJlcXVlc3Qrand0Iiwia2lkIjoid0M3b0JtcXBFX2xmSkcwQXA0NkxWenFEYXg0LUhuenAxdHdmdjRoV0pzVSJ9.eyJpc3MiOiJWTi9HT1YvVEVTVC9pbnRlZ3JhdGlvbiIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMCIsImlhdCI6MTc5NjUxNzA1NSwiZXhwIjoxNzk2NTE3MTc1LCJqdGkiOiJmNGRlMzA4ZTlmYjk0ZDMzYWQ3MWE5NWU2ZGE2NTg4OCIsInJlcSI6InQxOURhOVVjd2ZpOFdrU2FZWGl2ZHRTbkxRbFhLWlRBbFBsQ2xTcENhRFUiLCJwdXJwb3NlIjp7InByb2NlZHVyZSI6IjEuMDA0MjIyIiwiY2FzZSI6IkNBU0UtMjAyNi0wMDAxIiwib2ZmaWNlciI6Im9mZmljZXItNyIsInN1YmplY3RzIjpbIjAyNDE5NDQwOTY1OCJdfX0.9ATvrDm_coQRAHgSd0MES7l_8RI4DjZvxuvL-g9aqIOriPx7etNmxcEJhAzDsyJaTP9kn-86HJ5fQOK1MnrEAQ"}');
INSERT INTO "event_personal" VALUES('7d11966d2f2e4b54be4fc9ff4f5cc8cd','f8aa93b5d229515cbf216916e39bdedc','{"operator": "op-1"}');
INSERT INTO "event_personal" VALUES('068a885b84d040b3af682639dcffd15c','34a5b8474a64c931e1e29fe7a0eefddc','{"operator": "op-1"}');
INSERT INTO "event_personal" VALUES('0c0156cb2b054cbc80ce89bca15ff0c7','d10e8e391112aff0f7a0e3eb1a504c93','{"auditor": "auditor-1", "subject": "030084367147"}');
INSERT INTO "event_personal" VALUES('721ce71a1132468f81679346a9d95b2e','bbc707b1729c965af217da2cc94df514','{"operator": "op-1"}');
INSERT INTO "event_personal" VALUES('2e4367b9c48347f79799b7c39f562bed','0fc59f03f5d42baa531b1ce92a86b3b1','{"auditor": "auditor-1", "subject": null}');
CREATE TABLE event_subjects (
	subject VARCHAR(64) NOT NULL, 
	event_id VARCHAR(32) NOT NULL, 
	CONSTRAINT pk_event_subjects PRIMARY KEY (subject, event_id), 
	CONSTRAINT fk_event_subjects_event_id_events FOREIGN KEY(event_id) REFERENCES events (id)
);
INSERT INTO "event_subjects" VALUES('030084367147','5afb74b384c1482ca55daf9eb5820cac');
INSERT INTO "event_subjects" VALUES('024194409658','3b80c750c8bd454e9a4e253acfed634b');
INSERT INTO "event_subjects" VALUES('030084367147','1f9a35bd7974482790d5e2f009405d5e');
INSERT INTO "event_subjects" VALUES('030084367147','7045f68d53a14ee9a1e78201e608d95c');
INSERT INTO "event_subjects" VALUES('0164739618','7c77c8cdee15469e8cf821b8231a11a5');
INSERT INTO "event_subjects" VALUES('024194409658','7f8ed40fd5ce43eabbc36c9ade25e4db');
INSERT INTO "event_subjects" VALUES('024194409658','fb288d80bb42414a800eb93fe1e67b02');
INSERT INTO "event_subjects" VALUES('024194409658','cc9ced4ec3614a7dac03851d9dd0ce6a');
INSERT INTO "event_subjects" VALUES('024194409658','1b7b680e8c844d568209df85bd95886e');
INSERT INTO "event_subjects" VALUES('024194409658','267272198a3e48619d3cf559313ed82d');
INSERT INTO "event_subjects" VALUES('030084367147','0c0156cb2b054cbc80ce89bca15ff0c7');
CREATE TABLE events (
	id VARCHAR(32) NOT NULL, 
	type VARCHAR(16) NOT NULL, 
	ts DATETIME NOT NULL, 
	request_id VARCHAR(64) NOT NULL, 
	client_id VARCHAR(128), 
	procedure VARCHAR(64), 
	outcome VARCHAR(40) NOT NULL, 
	policy_version VARCHAR(64) NOT NULL, 
	envelope JSON NOT NULL, 
	envelope_hash VARCHAR(64) NOT NULL, organisation VARCHAR(256), officer VARCHAR(32), case_ref VARCHAR(32), hidden_until DATETIME, fields_served INTEGER DEFAULT '0' NOT NULL, papers_avoided INTEGER DEFAULT '0' NOT NULL, 
	CONSTRAINT pk_events PRIMARY KEY (id), 
	CONSTRAINT ck_events_type CHECK (type IN ('access', 'consent', 'admin', 'auditor_search', 'key'))
);
INSERT INTO "events" VALUES('5afb74b384c1482ca55daf9eb5820cac','access','2026-12-06 00:30:54.664461','beb78d8c05d44fde9853fad9289532c7','VN/GOV/TEST/integration','1.004222','served','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "5afb74b384c1482ca55daf9eb5820cac", "type": "access", "ts": "2026-12-06T00:30:54.664461+00:00", "requestId": "beb78d8c05d44fde9853fad9289532c7", "outcome": "served", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "client": "VN/GOV/TEST/integration", "organisation": "Test agency", "kid": "wC7oBmqpE_lfJG0Ap46LVzqDax4-Hnzp1twfv4hWJsU", "officer": "0794801d519634d542edc9a0f36239de", "procedure": "1.004222", "case": "903b599dfbc2a9beaf926f4d26a9e378", "subjects": 1, "jti": "d12b1c74e94a4730bfc709bdd77cf7e7", "decisions": [{"path": "Citizen.fullName", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.phone", "decision": "CONSENT_REQUIRED", "basis": null, "subjects": [0]}], "sources": ["population"], "sourceCalls": 1, "actions": [], "status": 200, "errors": ["CONSENT_REQUIRED"], "fieldsServed": 2, "papersAvoided": 0, "subjectCommitments": ["1e484d3ae3e095b2eb4512fa3b4a4adf"], "personalHash": "0a3ceb9a16395b4597f7f98cfdf74669251fde09eb81df09057d60617214190f"}','13ff44a5cff1f4ad1349d8e9a903257d065d9cf2730cfa93ac7b6bf025dd13aa','Test agency','0794801d519634d542edc9a0f36239de','903b599dfbc2a9beaf926f4d26a9e378',NULL,2,0);
INSERT INTO "events" VALUES('3b80c750c8bd454e9a4e253acfed634b','access','2026-12-06 00:30:54.713716','80000cc532a545bbbd9643385c7d10aa','VN/GOV/TEST/integration','1.004222','served','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "3b80c750c8bd454e9a4e253acfed634b", "type": "access", "ts": "2026-12-06T00:30:54.713716+00:00", "requestId": "80000cc532a545bbbd9643385c7d10aa", "outcome": "served", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "client": "VN/GOV/TEST/integration", "organisation": "Test agency", "kid": "wC7oBmqpE_lfJG0Ap46LVzqDax4-Hnzp1twfv4hWJsU", "officer": "ffbc682cf30c93f73c8c10e78014f2a9", "procedure": "1.004222", "case": "5af72bfd16fb2d7fa2278c2cd5c2b3a7", "subjects": 1, "jti": "1dd185bf8f9f4c25af1f634fea5a9884", "decisions": [{"path": "Citizen.fullName", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.permanentResidence", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.household", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}], "sources": ["population"], "sourceCalls": 1, "actions": [], "status": 200, "errors": [], "fieldsServed": 4, "papersAvoided": 0, "subjectCommitments": ["7f9677a9719d24efed292750623d3bf5"], "personalHash": "eecb623676baafd019c71850356f7581299db3e351347c5b8902d134fdeca2ea"}','82f0afeec2eedf429e0415d126fa93225582c8eecf7f380abfe18d92ebf6dfad','Test agency','ffbc682cf30c93f73c8c10e78014f2a9','5af72bfd16fb2d7fa2278c2cd5c2b3a7',NULL,4,0);
INSERT INTO "events" VALUES('1f9a35bd7974482790d5e2f009405d5e','access','2026-12-06 00:30:54.749190','2a75626ccff94cadaa7ea5185771bb40','VN/GOV/TEST/integration','1.004222','rejected:INVALID_PURPOSE','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "1f9a35bd7974482790d5e2f009405d5e", "type": "access", "ts": "2026-12-06T00:30:54.749190+00:00", "requestId": "2a75626ccff94cadaa7ea5185771bb40", "outcome": "rejected:INVALID_PURPOSE", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "client": "VN/GOV/TEST/integration", "organisation": "Test agency", "officer": "0794801d519634d542edc9a0f36239de", "procedure": "1.004222", "status": 400, "errors": ["INVALID_PURPOSE"], "subjectCommitments": ["1253e5f0a4f683fffea873a54ee697e9"], "personalHash": "7ff3060eb3a2314ca0c6af5b9e7138b153e7f2f5efd719e9a55c6f0847461bb6"}','44e6851056e943e7c45d9a4dbca3edbe71ff79c5e9e552186391d3e06dfd309e','Test agency','0794801d519634d542edc9a0f36239de',NULL,NULL,0,0);
INSERT INTO "events" VALUES('c3fd29333d7f42ff82f5abc15bf4db7b','access','2026-12-06 00:30:54.788877','2eb47cfff88a4643a05faab0cdb852c6','VN/GOV/CAHN/investigation','LOCAL.criminal-case-identity-check','served','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "c3fd29333d7f42ff82f5abc15bf4db7b", "type": "access", "ts": "2026-12-06T00:30:54.788877+00:00", "requestId": "2eb47cfff88a4643a05faab0cdb852c6", "outcome": "served", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "hiddenUntil": "2026-12-08T00:30:54.719068Z", "client": "VN/GOV/CAHN/investigation", "organisation": "Hanoi City Police", "kid": "JD-m-kvJHmH0dEgJzaQmjAuX4MSimFz-YX5dC3NZAQs", "officer": "0794801d519634d542edc9a0f36239de", "procedure": "LOCAL.criminal-case-identity-check", "case": "58c29af3af0539bc72ae23c0b8911b46", "subjects": 1, "jti": "6d3031c8329343a6a9e99dbe92e9a1f3", "decisions": [{"path": "Citizen.fullName", "decision": "ALLOWED_BY_LAW", "basis": "Criminal Procedure Code No. 101/2015/QH13; Law on Identification No. 26/2023/QH15 Art. 9; Law on Personal Data Protection No. 91/2025/QH15", "subjects": [0]}], "sources": ["population"], "sourceCalls": 1, "actions": [], "status": 200, "errors": [], "fieldsServed": 2, "papersAvoided": 0, "subjectCommitments": ["0acbe85f518f73ebce1f1336fba98ae9"], "personalHash": "e5fb58fa6116b4cee1fdbd41a05230a5142d3453978589305698216b45b04043"}','1d60668a65b45cc2f1a12d9aeed55c0b78c65f7f8f86ae76cc8bd593a2553980','Hanoi City Police','0794801d519634d542edc9a0f36239de','58c29af3af0539bc72ae23c0b8911b46','2026-12-08 00:30:54.719068',2,0);
INSERT INTO "events" VALUES('7045f68d53a14ee9a1e78201e608d95c','access','2026-12-06 00:30:54.836715','b4d87ec8a214489f8f71f4f24a699957','VN/GOV/TEST/integration','1.004222','served','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "7045f68d53a14ee9a1e78201e608d95c", "type": "access", "ts": "2026-12-06T00:30:54.836715+00:00", "requestId": "b4d87ec8a214489f8f71f4f24a699957", "outcome": "served", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "client": "VN/GOV/TEST/integration", "organisation": "Test agency", "kid": "wC7oBmqpE_lfJG0Ap46LVzqDax4-Hnzp1twfv4hWJsU", "officer": "0794801d519634d542edc9a0f36239de", "procedure": "1.004222", "case": "903b599dfbc2a9beaf926f4d26a9e378", "subjects": 1, "jti": "e98ae87ded57419aaba80ddbb26d6e0b", "decisions": [{"path": "Citizen.birthDate", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.phone", "decision": "CONSENT_REQUIRED", "basis": null, "subjects": [0]}, {"path": "Citizen.fullName", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.relationToHead", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.permanentResidence", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.household", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.gender", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "LandParcel.address", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "LandParcel.certificateSerial", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "LandParcel.holders", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}], "sources": ["population"], "sourceCalls": 1, "actions": [{"prefill": "1.004222", "papersAvoided": ["Identity card", "Household registration book"], "papersStillNeeded": ["Proof of lawful dwelling (land-use certificate)"]}], "status": 200, "errors": [], "fieldsServed": 7, "papersAvoided": 2, "subjectCommitments": ["4b46ee0ce625956a2c7d8298e9db72f3"], "personalHash": "c41f473f4d28c2fb33849ace83d9b52a3bb0e88d9873f78c742ceea2b092d5ce"}','28175e087fd36d72c6e25e473a67febb6e1514d579c64e750ad3972cd5e69665','Test agency','0794801d519634d542edc9a0f36239de','903b599dfbc2a9beaf926f4d26a9e378',NULL,7,2);
INSERT INTO "events" VALUES('7c77c8cdee15469e8cf821b8231a11a5','access','2026-12-06 00:30:54.878510','56aec5bd87de481a9704c3fe506029c5','VN/GOV/TEST/integration','LOCAL.test-every-field','served','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "7c77c8cdee15469e8cf821b8231a11a5", "type": "access", "ts": "2026-12-06T00:30:54.878510+00:00", "requestId": "56aec5bd87de481a9704c3fe506029c5", "outcome": "served", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "client": "VN/GOV/TEST/integration", "organisation": "Test agency", "kid": "wC7oBmqpE_lfJG0Ap46LVzqDax4-Hnzp1twfv4hWJsU", "officer": "0794801d519634d542edc9a0f36239de", "procedure": "LOCAL.test-every-field", "case": "903b599dfbc2a9beaf926f4d26a9e378", "subjects": 1, "jti": "0012de4024b3443b9ca9bced6cd7ea8a", "decisions": [{"path": "Business.name", "decision": "ALLOWED_BY_LAW", "basis": "Test fixture, not a law", "subjects": [0]}], "sources": ["business"], "sourceCalls": 1, "actions": [], "status": 200, "errors": [], "fieldsServed": 2, "papersAvoided": 0, "subjectCommitments": ["09d373e8d531c75bfe432fa847baf76b"], "personalHash": "6de4fedbf0fad5813b3780ec8191255fe914430f0ff75f0b79f6d92e32b6c16d"}','8b6b644be5e31396f3c6db3decb99bbfd693c46789471c20b4e7cdc226b11f07','Test agency','0794801d519634d542edc9a0f36239de','903b599dfbc2a9beaf926f4d26a9e378',NULL,2,0);
INSERT INTO "events" VALUES('7f8ed40fd5ce43eabbc36c9ade25e4db','consent','2026-12-06 00:30:54.933242','9a2f9f0ad48843ce982b9d44b335e018','VN/GOV/TEST/integration','1.004222','requested','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "7f8ed40fd5ce43eabbc36c9ade25e4db", "type": "consent", "ts": "2026-12-06T00:30:54.933242+00:00", "requestId": "9a2f9f0ad48843ce982b9d44b335e018", "outcome": "requested", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "consent": "e9eff0ff14184d23a361abc1310b2227", "action": "requested", "consumer": "VN/GOV/TEST/integration", "procedure": "1.004222", "fields": ["Citizen.phone"], "validUntil": "2026-12-28T00:30:54.719068Z", "actor": "client", "acr": null, "subjectCommitments": ["d5f76828bcc440cc5062acb25ee9d9ef"], "personalHash": "d280abbe84e8b2481efe1732c89b0d065296c7944ab0bffb01d7cb18b58f26d9"}','9a5a1881b10bac98d413a98cff38580b54551af48754b5d5bd49f352c857e425',NULL,NULL,NULL,NULL,0,0);
INSERT INTO "events" VALUES('fb288d80bb42414a800eb93fe1e67b02','access','2026-12-06 00:30:54.936391','9a2f9f0ad48843ce982b9d44b335e018','VN/GOV/TEST/integration','1.004222','no_data','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "fb288d80bb42414a800eb93fe1e67b02", "type": "access", "ts": "2026-12-06T00:30:54.936391+00:00", "requestId": "9a2f9f0ad48843ce982b9d44b335e018", "outcome": "no_data", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "client": "VN/GOV/TEST/integration", "organisation": "Test agency", "kid": "wC7oBmqpE_lfJG0Ap46LVzqDax4-Hnzp1twfv4hWJsU", "officer": "0794801d519634d542edc9a0f36239de", "procedure": "1.004222", "case": "903b599dfbc2a9beaf926f4d26a9e378", "subjects": 1, "jti": "91414d51441a48a68baac11c089aca29", "decisions": [], "sources": [], "sourceCalls": 0, "actions": [{"consent": "e9eff0ff14184d23a361abc1310b2227", "action": "requested", "fields": ["Citizen.phone"]}], "status": 200, "errors": [], "fieldsServed": 0, "papersAvoided": 0, "subjectCommitments": ["76ae017c52cfcb0ba092d2cf7b63da21"], "personalHash": "7a03ce028d51e7f16bd73148c727e34f9751f29887512dc72e5b2277614d7e73"}','19519bed3422d5d85ee29c391e6b3425e77fe5cbebf097b2f159381b8f33734b','Test agency','0794801d519634d542edc9a0f36239de','903b599dfbc2a9beaf926f4d26a9e378',NULL,0,0);
INSERT INTO "events" VALUES('cc9ced4ec3614a7dac03851d9dd0ce6a','consent','2026-12-06 00:30:55.072649','1ccae99b6a1445ef965aad785d488cf0','VN/GOV/TEST/integration','1.004222','approved','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "cc9ced4ec3614a7dac03851d9dd0ce6a", "type": "consent", "ts": "2026-12-06T00:30:55.072649+00:00", "requestId": "1ccae99b6a1445ef965aad785d488cf0", "outcome": "approved", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "consent": "e9eff0ff14184d23a361abc1310b2227", "action": "approved", "consumer": "VN/GOV/TEST/integration", "procedure": "1.004222", "fields": ["Citizen.phone"], "validUntil": "2026-12-28T00:30:54.719068Z", "actor": "citizen", "acr": "vneid-level-2", "subjectCommitments": ["b976265c5201de74786655cb1b203b51"], "personalHash": "a31a85fc0bae8b22a893f931db474b0dde1b7ea03ede6ec6acc1b7462efaf80a"}','5210e40a579684d2910d1f86d7a70605131136f0525a7a9955ee48efae55daa3',NULL,NULL,NULL,NULL,0,0);
INSERT INTO "events" VALUES('1b7b680e8c844d568209df85bd95886e','consent','2026-12-06 00:30:55.082208','5279905e00ae4974a0712dd059229c0a','VN/GOV/TEST/integration','1.004222','revoked','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "1b7b680e8c844d568209df85bd95886e", "type": "consent", "ts": "2026-12-06T00:30:55.082208+00:00", "requestId": "5279905e00ae4974a0712dd059229c0a", "outcome": "revoked", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "consent": "e9eff0ff14184d23a361abc1310b2227", "action": "revoked", "consumer": "VN/GOV/TEST/integration", "procedure": "1.004222", "fields": ["Citizen.phone"], "validUntil": "2026-12-28T00:30:54.719068Z", "actor": "citizen", "acr": "vneid-level-2", "subjectCommitments": ["3a0c04545c032cc09f50dbf18299d74c"], "personalHash": "09fcc7ce28ddb125c4f1d121b51bb6f96d63636a24692ce2959c0bfff3bac155"}','565ba9d7cc349d6be68cfa45060388bc2aea495629e5885210415bac2272f40b',NULL,NULL,NULL,NULL,0,0);
INSERT INTO "events" VALUES('267272198a3e48619d3cf559313ed82d','access','2026-12-06 00:30:55.122517','b46c3bf3b9224d1eac704cb5dd65a985','VN/GOV/TEST/integration','1.004222','served','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "267272198a3e48619d3cf559313ed82d", "type": "access", "ts": "2026-12-06T00:30:55.122517+00:00", "requestId": "b46c3bf3b9224d1eac704cb5dd65a985", "outcome": "served", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "client": "VN/GOV/TEST/integration", "organisation": "Test agency", "kid": "wC7oBmqpE_lfJG0Ap46LVzqDax4-Hnzp1twfv4hWJsU", "officer": "0794801d519634d542edc9a0f36239de", "procedure": "1.004222", "case": "903b599dfbc2a9beaf926f4d26a9e378", "subjects": 1, "jti": "f4de308e9fb94d33ad71a95e6da65888", "decisions": [{"path": "Citizen.fullName", "decision": "ALLOWED_BY_LAW", "basis": "Law on Residence No. 68/2020/QH14; Law on Identification No. 26/2023/QH15 Art. 9; Decree No. 104/2022/ND-CP", "subjects": [0]}, {"path": "Citizen.phone", "decision": "CONSENT_REQUIRED", "basis": null, "subjects": [0]}], "sources": ["population"], "sourceCalls": 1, "actions": [], "status": 200, "errors": ["CONSENT_REQUIRED"], "fieldsServed": 2, "papersAvoided": 0, "subjectCommitments": ["7869393820a79c05fbbec8f17d09eba3"], "personalHash": "90adb00fb34dfe9877f851505e0a5ee5acf5f98add3402c210a987b45dfcf03e"}','f0d2411ede74ab29414d9220e36bdb5d86e40c32bd251b1d1ec2cba37d9b2e7c','Test agency','0794801d519634d542edc9a0f36239de','903b599dfbc2a9beaf926f4d26a9e378',NULL,2,0);
INSERT INTO "events" VALUES('7d11966d2f2e4b54be4fc9ff4f5cc8cd','admin','2026-12-06 00:30:55.136432','7ff8fa39a8254f21a3fbbcd8c17bcf7b','VN/GOV/CAHN/investigation',NULL,'client_suspended','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "7d11966d2f2e4b54be4fc9ff4f5cc8cd", "type": "admin", "ts": "2026-12-06T00:30:55.136432+00:00", "requestId": "7ff8fa39a8254f21a3fbbcd8c17bcf7b", "outcome": "client_suspended", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "action": "client_suspended", "client": "VN/GOV/CAHN/investigation", "operator": "782087b92da78ed4a3447c86ae6719bf", "operatorOrg": "VN/GOV/BCA", "subjectCommitments": [], "personalHash": "7ea890f5a802f68fcb1376e85069b2547b19ee816fe159736a01fd8b965e4412"}','3d2ea78314b44961cff9ca6e5afcffa63586a6a95f3d90358792dd926343fa96',NULL,NULL,NULL,NULL,0,0);
INSERT INTO "events" VALUES('068a885b84d040b3af682639dcffd15c','admin','2026-12-06 00:30:55.141798','f731d1aaf0a64a3fa41c54e959832593','VN/GOV/CAHN/investigation',NULL,'client_activated','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "068a885b84d040b3af682639dcffd15c", "type": "admin", "ts": "2026-12-06T00:30:55.141798+00:00", "requestId": "f731d1aaf0a64a3fa41c54e959832593", "outcome": "client_activated", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "action": "client_activated", "client": "VN/GOV/CAHN/investigation", "operator": "782087b92da78ed4a3447c86ae6719bf", "operatorOrg": "VN/GOV/BCA", "subjectCommitments": [], "personalHash": "45c8798381791ee249dc9fa73ac3a3678c752882189cebeb60a31cacf20d89c6"}','bc9fd13e760ea6eaf14f843cb4cb0c56543e1425961755f81a80c502e06d2d64',NULL,NULL,NULL,NULL,0,0);
INSERT INTO "events" VALUES('0c0156cb2b054cbc80ce89bca15ff0c7','auditor_search','2026-12-06 00:30:55.155595','d1bab7340e574ac981aa8cd12f9dd4e8',NULL,NULL,'searched','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "0c0156cb2b054cbc80ce89bca15ff0c7", "type": "auditor_search", "ts": "2026-12-06T00:30:55.155595+00:00", "requestId": "d1bab7340e574ac981aa8cd12f9dd4e8", "outcome": "searched", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "auditor": "581e548f747cb14cb72d5841d67953e1", "auditorOrg": "VN/GOV/TTCP", "filter": {"from": "2026-11-06T00:30:55.152748Z", "to": "2026-12-06T00:30:55.152748Z", "subject": "given (committed to in subjectCommitments)"}, "results": 3, "export": false, "subjectCommitments": ["c455779ddf8f73e877cc13487dae3797"], "personalHash": "824150023659adfbd28bac4d3c48c2393b6cdae6cc136ceebe487e8991484901"}','99d3eca4906e017209fffa5254b7bb548c5abd9d66605e3ed84c7e1e1a0e65a5',NULL,NULL,NULL,NULL,0,0);
INSERT INTO "events" VALUES('721ce71a1132468f81679346a9d95b2e','admin','2026-12-06 00:30:55.385595','',NULL,NULL,'forgotten','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "721ce71a1132468f81679346a9d95b2e", "type": "admin", "ts": "2026-12-06T00:30:55.385595+00:00", "requestId": "", "outcome": "forgotten", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "action": "forget", "operator": "782087b92da78ed4a3447c86ae6719bf", "events": ["c3fd29333d7f42ff82f5abc15bf4db7b"], "consentsDeleted": 0, "subjectCommitments": [], "personalHash": "13e09ae51f17414a4743a1c64cc78522043e429854d719917511d3af9d70464e"}','9c71baff8329748157dd56ac1bbcd840a002d5623f6b7be6a1078c565b255ea3',NULL,NULL,NULL,NULL,0,0);
INSERT INTO "events" VALUES('2e4367b9c48347f79799b7c39f562bed','auditor_search','2026-12-06 00:30:56.024497','1cda3abf41574eacb8f5e13020a4105c',NULL,NULL,'exported','c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8','{"v": 1, "id": "2e4367b9c48347f79799b7c39f562bed", "type": "auditor_search", "ts": "2026-12-06T00:30:56.024497+00:00", "requestId": "1cda3abf41574eacb8f5e13020a4105c", "outcome": "exported", "policyVersion": "c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8", "auditor": "581e548f747cb14cb72d5841d67953e1", "auditorOrg": "VN/GOV/TTCP", "filter": {"from": "2025-12-31T17:00:00Z", "to": "2026-12-06T00:30:56.022855Z"}, "export": true, "checkpoint": 15, "subjectCommitments": [], "personalHash": "f081f5f32fc83f0f618549e8dbb141238b07cc371aaa29d0e8411fdaca00e18d"}','6bdb65de3c319fcdf43acdc48019073355283a81d2012a070964b004666cd192',NULL,NULL,NULL,NULL,0,0);
CREATE TABLE log_checkpoints (
	size BIGINT NOT NULL, 
	root BLOB NOT NULL, 
	note TEXT NOT NULL, 
	signed_at DATETIME NOT NULL, 
	CONSTRAINT pk_log_checkpoints PRIMARY KEY (size)
);
INSERT INTO "log_checkpoints" VALUES(0,X'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855','127.0.0.1:8000/log
0
47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=

— 127.0.0.1:8000/log JmXOms5UHvZLbNvNQHCVRP0FygruWgKmjdYhUFcS6f3zMaxwhEn1lfCdBfsTOgIdE2PSXFb/YW9rBcYnZH4jJc9LiAY=
','2026-12-06 00:30:54.552275');
INSERT INTO "log_checkpoints" VALUES(3,X'F9C688CA19A04482DCDDDD51A6D79DA33160C52C38A5B27DDEC0CFE24233723B','127.0.0.1:8000/log
3
+caIyhmgRILc3d1RptedozFgxSw4pbJ93sDP4kIzcjs=

— 127.0.0.1:8000/log JmXOmo0wxu/AzStPbqBoQWFIHaESuyzZzhVCBdoJ5VGOdcxjadO7lQ6+SeC6JdzpBmalGQkrZMK9/td9NycfF8FSswU=
','2026-12-06 00:30:54.773747');
INSERT INTO "log_checkpoints" VALUES(5,X'E6AB0DE36AA300B00CFC37E5A3B57054078B83B21EE9BCCEE17C438840C0349B','127.0.0.1:8000/log
5
5qsN42qjALAM/Dflo7VwVAeLg7Ie6bzO4XxDiEDANJs=

— 127.0.0.1:8000/log JmXOmkG443+qtfQpSjhDRPu9cv7AClz7aUhEdM1vWcLIZE0McwLS1jkzdg3/ZTwCe5rsAow1oeEhiseWpC8ZGRD/1Q4=
','2026-12-06 00:30:54.882479');
INSERT INTO "log_checkpoints" VALUES(8,X'1C142EE038EA96C1A997706947D22BBB7519239C4C6F5B8674D3A00BE946DA83','127.0.0.1:8000/log
8
HBQu4DjqlsGpl3BpR9Iru3UZI5xMb1uGdNOgC+lG2oM=

— 127.0.0.1:8000/log JmXOmvBLUNZezbxtuOPVoLl6lhkfMS8lrGSFUlE7LDVvKjjovpczLS45ynhzhcNYNJNHKKPRoqSW+HVLyA+OdYMd1wY=
','2026-12-06 00:30:54.987000');
INSERT INTO "log_checkpoints" VALUES(10,X'561399DFB444F2EF34FBB1D341042B7E798F9E65D928C40045361BCD97E6CDD6','127.0.0.1:8000/log
10
VhOZ37RE8u80+7HTQQQrfnmPnmXZKMQARTYbzZfmzdY=

— 127.0.0.1:8000/log JmXOmnDTnJfT2LTqL5fY+U5ZMtMmNMEzjEffDWOO0WEvO1fpu/W9ne0gdUlS0tvR1pJK4mSvS7RW9OyypockPNgNFwY=
','2026-12-06 00:30:55.091288');
INSERT INTO "log_checkpoints" VALUES(14,X'AC4BD562F49C56BA82FFA0126A702F278E5EAAD337BBCE1A831D4092D8131734','127.0.0.1:8000/log
14
rEvVYvScVrqC/6ASanAvJ45eqtM3u84agx1AktgTFzQ=

— 127.0.0.1:8000/log JmXOmiFryz7VgQebi8gSMm5XSUBf5h77kXkhWzEVxmYnfOnRQTtj4pZxdoM2Lmymz5P6Pxkd9mA/jdM2MUQM5ZrwbwM=
','2026-12-06 00:30:55.377581');
INSERT INTO "log_checkpoints" VALUES(15,X'15F457541F136BF21C70AB93E81827E20F596ECFC1DFA5226E40064012ABAB28','127.0.0.1:8000/log
15
FfRXVB8Ta/IccKuT6Bgn4g9Zbs/B36UibkAGQBKrqyg=

— 127.0.0.1:8000/log JmXOmuszOlv6sw5MCNbd17FVxpLEK5eZvjKhVPcUxvuGUdvetgp5V7pVuUDda/JeDxJ+jKMMPSxA+ZEIyflVV2SPjgU=
','2026-12-06 00:30:55.487984');
INSERT INTO "log_checkpoints" VALUES(16,X'A854AF7E72B68D6FE0F51C94572321AED286F0E04975B37B22EF7AAE4F9E40C7','127.0.0.1:8000/log
16
qFSvfnK2jW/g9RyUVyMhrtKG8OBJdbN7Iu96rk+eQMc=

— 127.0.0.1:8000/log JmXOmgxf+sNvxY50dgvTl0awq9TTKkXAjztDDk/zvKe3jFd+Sz398Z1fQDVO6V/ieJzqiJx4IxasRck+EogPKHk0tQg=
','2026-12-06 00:30:56.120094');
CREATE TABLE log_leaves (
	idx BIGINT NOT NULL, 
	event_id VARCHAR(32) NOT NULL, 
	leaf TEXT NOT NULL, 
	leaf_hash BLOB NOT NULL, 
	CONSTRAINT pk_log_leaves PRIMARY KEY (idx), 
	CONSTRAINT fk_log_leaves_event_id_events FOREIGN KEY(event_id) REFERENCES events (id), 
	CONSTRAINT uq_log_leaves_event_id UNIQUE (event_id)
);
INSERT INTO "log_leaves" VALUES(0,'5afb74b384c1482ca55daf9eb5820cac','{"envelope_hash":"13ff44a5cff1f4ad1349d8e9a903257d065d9cf2730cfa93ac7b6bf025dd13aa","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:54.664461Z","type":"access","v":1}',X'06E3A44B26DD7150E93F5817F8153AB43A97155F7BE2722A7EB7697FBB0C4709');
INSERT INTO "log_leaves" VALUES(1,'3b80c750c8bd454e9a4e253acfed634b','{"envelope_hash":"82f0afeec2eedf429e0415d126fa93225582c8eecf7f380abfe18d92ebf6dfad","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:54.713716Z","type":"access","v":1}',X'86540584ED9EFA328760E32F72E43583C52027FC7A634436E9F87289566CBE19');
INSERT INTO "log_leaves" VALUES(2,'1f9a35bd7974482790d5e2f009405d5e','{"envelope_hash":"44e6851056e943e7c45d9a4dbca3edbe71ff79c5e9e552186391d3e06dfd309e","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:54.749190Z","type":"access","v":1}',X'661B09CD9EAB43B83C49F2E6D25810168FF6826C2242F3C8B4C3B2091B4D0E73');
INSERT INTO "log_leaves" VALUES(3,'c3fd29333d7f42ff82f5abc15bf4db7b','{"envelope_hash":"1d60668a65b45cc2f1a12d9aeed55c0b78c65f7f8f86ae76cc8bd593a2553980","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:54.788877Z","type":"access","v":1}',X'00CD897740208DD4B1961EDA4BD1F2FD3C6D094D1C7F089B557833A639A05EC5');
INSERT INTO "log_leaves" VALUES(4,'7045f68d53a14ee9a1e78201e608d95c','{"envelope_hash":"28175e087fd36d72c6e25e473a67febb6e1514d579c64e750ad3972cd5e69665","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:54.836715Z","type":"access","v":1}',X'111424EED65F9B0C519FC47B2B6CE0F04000B679D5B607C654B183E4C15F1F87');
INSERT INTO "log_leaves" VALUES(5,'7c77c8cdee15469e8cf821b8231a11a5','{"envelope_hash":"8b6b644be5e31396f3c6db3decb99bbfd693c46789471c20b4e7cdc226b11f07","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:54.878510Z","type":"access","v":1}',X'3435ECF0794D23906917F88776770EACB647BF3A77DED43BF9770210D2AB2C74');
INSERT INTO "log_leaves" VALUES(6,'7f8ed40fd5ce43eabbc36c9ade25e4db','{"envelope_hash":"9a5a1881b10bac98d413a98cff38580b54551af48754b5d5bd49f352c857e425","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:54.933242Z","type":"consent","v":1}',X'2C5925859481F1BA75B3BE5A8FA9CD3958943080AC19F57F50C51D55AF862599');
INSERT INTO "log_leaves" VALUES(7,'fb288d80bb42414a800eb93fe1e67b02','{"envelope_hash":"19519bed3422d5d85ee29c391e6b3425e77fe5cbebf097b2f159381b8f33734b","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:54.936391Z","type":"access","v":1}',X'E115907B6D371EBB3836682555952794C3F3EC6503A8FA6B661A3EC8F4A9B8CB');
INSERT INTO "log_leaves" VALUES(8,'cc9ced4ec3614a7dac03851d9dd0ce6a','{"envelope_hash":"5210e40a579684d2910d1f86d7a70605131136f0525a7a9955ee48efae55daa3","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:55.072649Z","type":"consent","v":1}',X'370431153815E949E3A6FA469777F6A2C385027C2D8139EB98AF075436BE520E');
INSERT INTO "log_leaves" VALUES(9,'1b7b680e8c844d568209df85bd95886e','{"envelope_hash":"565ba9d7cc349d6be68cfa45060388bc2aea495629e5885210415bac2272f40b","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:55.082208Z","type":"consent","v":1}',X'A60E1D4732412F7D6F699457EC3797C8B9B749F853F5294141647962B2FFC224');
INSERT INTO "log_leaves" VALUES(10,'267272198a3e48619d3cf559313ed82d','{"envelope_hash":"f0d2411ede74ab29414d9220e36bdb5d86e40c32bd251b1d1ec2cba37d9b2e7c","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:55.122517Z","type":"access","v":1}',X'B479C77B9588198ACF5F0B26D617A878A0DCFD3CE4A447028C7185B752AAAA88');
INSERT INTO "log_leaves" VALUES(11,'7d11966d2f2e4b54be4fc9ff4f5cc8cd','{"envelope_hash":"3d2ea78314b44961cff9ca6e5afcffa63586a6a95f3d90358792dd926343fa96","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:55.136432Z","type":"admin","v":1}',X'8DBEA2170B4B6D69D8CC35491327C355946E3992F4119FDA35616BDF8F0949F3');
INSERT INTO "log_leaves" VALUES(12,'068a885b84d040b3af682639dcffd15c','{"envelope_hash":"bc9fd13e760ea6eaf14f843cb4cb0c56543e1425961755f81a80c502e06d2d64","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:55.141798Z","type":"admin","v":1}',X'2FAF40A831D47F5FEE66D22BF2C31FFEA5CBDD0ADB7D675F2528347682664AD6');
INSERT INTO "log_leaves" VALUES(13,'0c0156cb2b054cbc80ce89bca15ff0c7','{"envelope_hash":"99d3eca4906e017209fffa5254b7bb548c5abd9d66605e3ed84c7e1e1a0e65a5","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:55.155595Z","type":"auditor_search","v":1}',X'197B88DA863280C036255A605FD48E9BC6DDA8C8E68EA67BC6102C8EE316022A');
INSERT INTO "log_leaves" VALUES(14,'721ce71a1132468f81679346a9d95b2e','{"envelope_hash":"9c71baff8329748157dd56ac1bbcd840a002d5623f6b7be6a1078c565b255ea3","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:55.385595Z","type":"admin","v":1}',X'599775D47028FC8817373D795056BCCA0A93E783F33B96F614A23B6AA74D336A');
INSERT INTO "log_leaves" VALUES(15,'2e4367b9c48347f79799b7c39f562bed','{"envelope_hash":"6bdb65de3c319fcdf43acdc48019073355283a81d2012a070964b004666cd192","policy_version":"c93552166ca309628c46e922c105b5a99a2085bf38b30b7271069a9470705ed8","ts":"2026-12-06T00:30:56.024497Z","type":"auditor_search","v":1}',X'07B9E38F5A31A7083C7CF43256423F2397DC6C417D30A58AD2DE41FD2FAEA22F');
CREATE TABLE log_nodes (
	level SMALLINT NOT NULL, 
	idx BIGINT NOT NULL, 
	hash BLOB NOT NULL, 
	CONSTRAINT pk_log_nodes PRIMARY KEY (level, idx)
);
INSERT INTO "log_nodes" VALUES(0,0,X'06E3A44B26DD7150E93F5817F8153AB43A97155F7BE2722A7EB7697FBB0C4709');
INSERT INTO "log_nodes" VALUES(0,1,X'86540584ED9EFA328760E32F72E43583C52027FC7A634436E9F87289566CBE19');
INSERT INTO "log_nodes" VALUES(1,0,X'337B63859E5406A789F1C4208DD56D587D79434A5F08BCBB93B368CE94578BA7');
INSERT INTO "log_nodes" VALUES(0,2,X'661B09CD9EAB43B83C49F2E6D25810168FF6826C2242F3C8B4C3B2091B4D0E73');
INSERT INTO "log_nodes" VALUES(0,3,X'00CD897740208DD4B1961EDA4BD1F2FD3C6D094D1C7F089B557833A639A05EC5');
INSERT INTO "log_nodes" VALUES(1,1,X'B6D272B9108DC93981CD27880FB71911CDD18EE046EDC979FDFCFC468BD0F5B5');
INSERT INTO "log_nodes" VALUES(2,0,X'0AC5C2384AD322C0DF01FBCA81F7E392ECA0936104FE69013A88E1EF24608578');
INSERT INTO "log_nodes" VALUES(0,4,X'111424EED65F9B0C519FC47B2B6CE0F04000B679D5B607C654B183E4C15F1F87');
INSERT INTO "log_nodes" VALUES(0,5,X'3435ECF0794D23906917F88776770EACB647BF3A77DED43BF9770210D2AB2C74');
INSERT INTO "log_nodes" VALUES(1,2,X'F76EF522F1DFCF19097E61B9EEBE613BFAAFFAD9436F656513F1BEF85683A5DB');
INSERT INTO "log_nodes" VALUES(0,6,X'2C5925859481F1BA75B3BE5A8FA9CD3958943080AC19F57F50C51D55AF862599');
INSERT INTO "log_nodes" VALUES(0,7,X'E115907B6D371EBB3836682555952794C3F3EC6503A8FA6B661A3EC8F4A9B8CB');
INSERT INTO "log_nodes" VALUES(1,3,X'E98438FCBB71CA7D1B82F6A2AE93B0D17646912F5080B525E96DD093CFA9687B');
INSERT INTO "log_nodes" VALUES(2,1,X'9D853298ECB21026578EF9B6C8B51140EDAF515C9AA88A063FB43FECDBB4F814');
INSERT INTO "log_nodes" VALUES(3,0,X'1C142EE038EA96C1A997706947D22BBB7519239C4C6F5B8674D3A00BE946DA83');
INSERT INTO "log_nodes" VALUES(0,8,X'370431153815E949E3A6FA469777F6A2C385027C2D8139EB98AF075436BE520E');
INSERT INTO "log_nodes" VALUES(0,9,X'A60E1D4732412F7D6F699457EC3797C8B9B749F853F5294141647962B2FFC224');
INSERT INTO "log_nodes" VALUES(1,4,X'2F2D89807D6AB42420E733806F59DFB84CD5E486F4AEED2724B75DC94D9643C1');
INSERT INTO "log_nodes" VALUES(0,10,X'B479C77B9588198ACF5F0B26D617A878A0DCFD3CE4A447028C7185B752AAAA88');
INSERT INTO "log_nodes" VALUES(0,11,X'8DBEA2170B4B6D69D8CC35491327C355946E3992F4119FDA35616BDF8F0949F3');
INSERT INTO "log_nodes" VALUES(1,5,X'634D89742BDD1A39CFC8D4D42AD51C289F06C426BD4C98A93D6B9080D276ABD1');
INSERT INTO "log_nodes" VALUES(2,2,X'1252632B3AB6F26F6958B243E90FEF1CD335F980678A74DCACEFDA9FE7F622BE');
INSERT INTO "log_nodes" VALUES(0,12,X'2FAF40A831D47F5FEE66D22BF2C31FFEA5CBDD0ADB7D675F2528347682664AD6');
INSERT INTO "log_nodes" VALUES(0,13,X'197B88DA863280C036255A605FD48E9BC6DDA8C8E68EA67BC6102C8EE316022A');
INSERT INTO "log_nodes" VALUES(1,6,X'35060F07E8CF082BD009A2DD51CC17861EEC6ECD194EF151B21D2A04C3D267D9');
INSERT INTO "log_nodes" VALUES(0,14,X'599775D47028FC8817373D795056BCCA0A93E783F33B96F614A23B6AA74D336A');
INSERT INTO "log_nodes" VALUES(0,15,X'07B9E38F5A31A7083C7CF43256423F2397DC6C417D30A58AD2DE41FD2FAEA22F');
INSERT INTO "log_nodes" VALUES(1,7,X'906F18133E52490273B2650AE4009DF8A6D5B4C1DBB56CDF632635D6AB93698E');
INSERT INTO "log_nodes" VALUES(2,3,X'BDB01942C6D85FB4C46BD2932A5FEA2B1371109798C5952A55E83D54B75BEBDE');
INSERT INTO "log_nodes" VALUES(3,1,X'A7433674FD7D6B5699DBFF31F55405C3E2914A9DAE820354A68B40B45FC63AF6');
INSERT INTO "log_nodes" VALUES(4,0,X'A854AF7E72B68D6FE0F51C94572321AED286F0E04975B37B22EF7AAE4F9E40C7');
CREATE TABLE log_queue (
	seq INTEGER NOT NULL, 
	event_id VARCHAR(32) NOT NULL, leaf_hash BLOB, 
	CONSTRAINT pk_log_queue PRIMARY KEY (seq), 
	CONSTRAINT fk_log_queue_event_id_events FOREIGN KEY(event_id) REFERENCES events (id), 
	CONSTRAINT uq_log_queue_event_id UNIQUE (event_id)
);
CREATE TABLE log_state (
	id SMALLINT NOT NULL, 
	size BIGINT NOT NULL, 
	root BLOB NOT NULL, 
	updated_at DATETIME NOT NULL, 
	CONSTRAINT pk_log_state PRIMARY KEY (id), 
	CONSTRAINT ck_log_state_one_row CHECK (id = 1)
);
INSERT INTO "log_state" VALUES(1,16,X'A854AF7E72B68D6FE0F51C94572321AED286F0E04975B37B22EF7AAE4F9E40C7','2026-12-06 00:30:56.120094');
CREATE TABLE subject_keys (
	subject VARCHAR(64) NOT NULL, 
	"key" BLOB NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_subject_keys PRIMARY KEY (subject)
);
INSERT INTO "subject_keys" VALUES('030084367147',X'F0A4D4CEADA9FD7413525F9A1CCDD950546D5BA08868D2FC0230A5D5D6FEE50A','2026-12-06 00:30:54.667187');
INSERT INTO "subject_keys" VALUES('024194409658',X'F07EE50AF3009DA976DB29A14D9AC8BF846FDA5186F7EC2DB630B8044B6DCACD','2026-12-06 00:30:54.714472');
INSERT INTO "subject_keys" VALUES('0164739618',X'857A43399C3AF1940D627C40BB9D69B1AE415DAB40E807A6008DD97495A568E1','2026-12-06 00:30:54.879268');
CREATE INDEX ix_events_ts ON events (ts);
CREATE INDEX ix_consents_subject ON consents (subject);
CREATE INDEX ix_log_leaves_leaf_hash ON log_leaves (leaf_hash);
CREATE INDEX ix_events_client_id_ts ON events (client_id, ts);
CREATE INDEX ix_events_organisation_ts ON events (organisation, ts);
CREATE INDEX ix_events_officer_ts ON events (officer, ts);
CREATE INDEX ix_events_case_ref_ts ON events (case_ref, ts);
CREATE INDEX ix_events_procedure_ts ON events (procedure, ts);
CREATE INDEX ix_events_type_ts ON events (type, ts);
CREATE INDEX ix_event_decisions_decision_ts ON event_decisions (decision, ts);
COMMIT;
