"""The local pipeline: the real handler and the real jobs against moto's S3 and Batch APIs."""
