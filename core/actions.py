"""Map S3 access-log operations (``REST.GET.OBJECT``) to CloudTrail eventName vocabulary (``GetObject``)."""
from __future__ import annotations

# Operations whose action depends on whether the row names an object key.
_KEYED = {
    "REST.GET.ACL": ("GetBucketAcl", "GetObjectAcl"),
    "REST.PUT.ACL": ("PutBucketAcl", "PutObjectAcl"),
    "REST.GET.TAGGING": ("GetBucketTagging", "GetObjectTagging"),
    "REST.PUT.TAGGING": ("PutBucketTagging", "PutObjectTagging"),
    "REST.DELETE.TAGGING": ("DeleteBucketTagging", "DeleteObjectTagging"),
}

_MAP = {
    "REST.GET.OBJECT": "GetObject",
    "WEBSITE.GET.OBJECT": "GetObject",
    "REST.HEAD.OBJECT": "HeadObject",
    "WEBSITE.HEAD.OBJECT": "HeadObject",
    "REST.PUT.OBJECT": "PutObject",
    "REST.POST.OBJECT": "PutObject",
    "REST.DELETE.OBJECT": "DeleteObject",
    "BATCH.DELETE.OBJECT": "DeleteObject",
    "REST.POST.MULTI_OBJECT_DELETE": "DeleteObjects",
    "REST.COPY.OBJECT": "CopyObject",
    "REST.COPY.OBJECT_GET": "CopyObject",
    "REST.COPY.PART": "UploadPartCopy",
    "REST.COPY.PART_GET": "UploadPartCopy",
    "REST.PUT.PART": "UploadPart",
    "REST.POST.UPLOADS": "CreateMultipartUpload",
    "REST.POST.UPLOAD": "CompleteMultipartUpload",
    "REST.DELETE.UPLOAD": "AbortMultipartUpload",
    "REST.GET.UPLOAD": "ListParts",
    "REST.GET.UPLOADS": "ListMultipartUploads",
    "REST.POST.RESTORE": "RestoreObject",
    "REST.POST.SELECT": "SelectObjectContent",
    "REST.GET.BUCKET": "ListObjects",
    "REST.GET.BUCKETVERSIONS": "ListObjectVersions",
    "REST.GET.SERVICE": "ListBuckets",
    "REST.PUT.BUCKET": "CreateBucket",
    "REST.DELETE.BUCKET": "DeleteBucket",
    "REST.HEAD.BUCKET": "HeadBucket",
    "REST.GET.LOCATION": "GetBucketLocation",
    "REST.GET.BUCKETACL": "GetBucketAcl",
    "REST.PUT.BUCKETACL": "PutBucketAcl",
    "REST.GET.OBJECT_TAGGING": "GetObjectTagging",
    "REST.PUT.OBJECT_TAGGING": "PutObjectTagging",
    "REST.DELETE.OBJECT_TAGGING": "DeleteObjectTagging",
    "REST.GET.BUCKETPOLICY": "GetBucketPolicy",
    "REST.PUT.BUCKETPOLICY": "PutBucketPolicy",
    "REST.DELETE.BUCKETPOLICY": "DeleteBucketPolicy",
    "REST.GET.POLICY_STATUS": "GetBucketPolicyStatus",
    "REST.GET.LOGGING_STATUS": "GetBucketLogging",
    "REST.PUT.LOGGING_STATUS": "PutBucketLogging",
    "REST.GET.VERSIONING": "GetBucketVersioning",
    "REST.PUT.VERSIONING": "PutBucketVersioning",
    "REST.GET.PUBLIC_ACCESS_BLOCK": "GetBucketPublicAccessBlock",
    "REST.PUT.PUBLIC_ACCESS_BLOCK": "PutBucketPublicAccessBlock",
    "REST.DELETE.PUBLIC_ACCESS_BLOCK": "DeleteBucketPublicAccessBlock",
    "REST.GET.ENCRYPTION": "GetBucketEncryption",
    "REST.PUT.ENCRYPTION": "PutBucketEncryption",
    "REST.DELETE.ENCRYPTION": "DeleteBucketEncryption",
    "REST.GET.CORS": "GetBucketCors",
    "REST.PUT.CORS": "PutBucketCors",
    "REST.DELETE.CORS": "DeleteBucketCors",
    "REST.GET.LIFECYCLE": "GetBucketLifecycle",
    "REST.PUT.LIFECYCLE": "PutBucketLifecycle",
    "REST.DELETE.LIFECYCLE": "DeleteBucketLifecycle",
    "REST.GET.REPLICATION": "GetBucketReplication",
    "REST.PUT.REPLICATION": "PutBucketReplication",
    "REST.DELETE.REPLICATION": "DeleteBucketReplication",
    "REST.GET.WEBSITE": "GetBucketWebsite",
    "REST.PUT.WEBSITE": "PutBucketWebsite",
    "REST.DELETE.WEBSITE": "DeleteBucketWebsite",
    "REST.GET.NOTIFICATION": "GetBucketNotification",
    "REST.PUT.NOTIFICATION": "PutBucketNotification",
    "REST.GET.OWNERSHIP_CONTROLS": "GetBucketOwnershipControls",
    "REST.PUT.OWNERSHIP_CONTROLS": "PutBucketOwnershipControls",
    "REST.DELETE.OWNERSHIP_CONTROLS": "DeleteBucketOwnershipControls",
    "REST.GET.OBJECT_LOCK_CONFIGURATION": "GetObjectLockConfiguration",
    "REST.PUT.OBJECT_LOCK_CONFIGURATION": "PutObjectLockConfiguration",
    "REST.GET.ACCELERATE": "GetBucketAccelerateConfiguration",
    "REST.PUT.ACCELERATE": "PutBucketAccelerateConfiguration",
    "REST.GET.REQUEST_PAYMENT": "GetBucketRequestPayment",
    "REST.GET.ANALYTICS": "GetBucketAnalyticsConfiguration",
    "REST.GET.INVENTORY": "GetBucketInventoryConfiguration",
    "REST.GET.METRICS": "GetBucketMetricsConfiguration",
    "REST.GET.INTELLIGENT_TIERING": "GetBucketIntelligentTieringConfiguration",
}

_cache: dict[tuple[str, bool], str | None] = {}


def action_for(operation: str, has_key: bool, request_uri: str | None = None) -> str | None:
    """CloudTrail's eventName for an access-log operation, or None where there is none."""
    if operation == "REST.GET.BUCKET" and request_uri and "list-type=2" in request_uri:
        return "ListObjectsV2"
    ck = (operation, has_key)
    try:
        return _cache[ck]
    except KeyError:
        pass
    keyed = _KEYED.get(operation)
    action = (keyed[1] if has_key else keyed[0]) if keyed else _MAP.get(operation)
    _cache[ck] = action
    return action
