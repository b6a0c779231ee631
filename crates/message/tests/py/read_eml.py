"""Independent reader of what mss writes, with the Python standard library only.

Usage: python3 read_eml.py MESSAGE.eml  -> prints a JSON summary, exits 1 on any violation.

Checks the MIME structure with `email`, opens IHE_XDM.zip with `zipfile`, parses METADATA.XML with
`xml.etree`, checks the ebRIM 3.0 structure the XSD would check (element order inside registry
objects, required attributes, id references) plus the XDS required slots, and recomputes each
document's SHA-1 and size.
"""
import email
import email.policy
import hashlib
import io
import json
import sys
import xml.etree.ElementTree as ET
import zipfile

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
R = "{%s}" % RIM
ORDER = ["Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier", "ContentVersionInfo"]
DOC_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DOC_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SS_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
CLASS, TYPE, FORMAT, CONF = (
    "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
    "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
    "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
    "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
)

errors = []


def fail(msg):
    errors.append(msg)


def local(tag):
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def check_registry_object(el, ids):
    """ebRIM RegistryObjectType: Slot*, Name?, Description?, VersionInfo?, Classification*, ExternalIdentifier*."""
    if not el.get("id"):
        fail("%s without id" % local(el.tag))
    last = -1
    for child in el:
        name = local(child.tag)
        if child.tag.split("}")[0][1:] != RIM:
            fail("%s: child %s outside the rim namespace" % (local(el.tag), child.tag))
            continue
        if name not in ORDER:
            fail("%s: unexpected child %s" % (local(el.tag), name))
            continue
        pos = ORDER.index(name)
        if pos < last:
            fail("%s: %s out of schema order" % (local(el.tag), name))
        if name in ("Name", "Description") and pos == last:
            fail("%s: more than one %s" % (local(el.tag), name))
        last = pos
        if name == "Slot":
            if not child.get("name") or child.find(R + "ValueList") is None:
                fail("Slot without name or ValueList")
        elif name in ("Name", "Description"):
            for ls in child:
                if local(ls.tag) != "LocalizedString" or ls.get("value") is None:
                    fail("%s holds something else than LocalizedString@value" % name)
        elif name == "Classification":
            check_registry_object(child, ids)
            if child.get("classifiedObject") != el.get("id"):
                fail("Classification %s classifies %s, not its parent" % (child.get("id"), child.get("classifiedObject")))
            if child.get("classificationScheme") and child.get("nodeRepresentation") is None:
                fail("Classification %s: scheme without nodeRepresentation" % child.get("id"))
        elif name == "ExternalIdentifier":
            check_registry_object(child, ids)
            for a in ("identificationScheme", "value", "registryObject"):
                if not child.get(a):
                    fail("ExternalIdentifier without %s" % a)
            if child.get("registryObject") != el.get("id"):
                fail("ExternalIdentifier %s points elsewhere" % child.get("id"))
    ids.append(el.get("id"))


def slots(el):
    return {s.get("name"): [v.text or "" for v in s.iter(R + "Value")] for s in el.findall(R + "Slot")}


def classifications(el, scheme):
    return [c for c in el.findall(R + "Classification") if c.get("classificationScheme") == scheme]


def external(el, scheme):
    for x in el.findall(R + "ExternalIdentifier"):
        if x.get("identificationScheme") == scheme:
            return x.get("value")
    return None


def main(path):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    summary = {
        "from": str(msg["From"]),
        "to": str(msg["To"]),
        "subject": str(msg["Subject"]),
        "message_id": str(msg["Message-ID"]),
        "x_mss_nil": msg["X-MSS-NIL"],
        "x_mss_codecda": msg["X-MSS-CODECDA"],
        "x_mss_ins": msg["X-MSS-INS"],
        "x_mss_mes": msg["X-MSS-MES"],
        "content_type": msg.get_content_type(),
    }
    body = msg.get_body(preferencelist=("plain",))
    summary["text_starts"] = body.get_content()[:20] if body is not None else None
    zips = [p for p in msg.iter_attachments() if (p.get_filename() or "").lower() == "ihe_xdm.zip"]
    summary["xdm_parts"] = len(zips)
    if len(zips) != 1:
        fail("expected one IHE_XDM.zip, found %d" % len(zips))
        return summary
    part = zips[0]
    summary["xdm_content_type"] = part.get_content_type()
    summary["xdm_transfer_encoding"] = part["Content-Transfer-Encoding"]
    data = part.get_payload(decode=True)
    zf = zipfile.ZipFile(io.BytesIO(data))
    if zf.testzip() is not None:
        fail("zip CRC error")
    names = zf.namelist()
    summary["zip_names"] = names
    upper = {n.upper(): n for n in names}
    for required in ("README.TXT", "INDEX.HTM"):
        if required not in upper:
            fail("missing " + required)
    metas = [n for n in names if n.upper().startswith("IHE_XDM/") and n.upper().endswith("/METADATA.XML")]
    if len(metas) != 1:
        fail("expected one METADATA.XML, found %r" % metas)
        return summary
    meta_dir = metas[0].rsplit("/", 1)[0]
    root = ET.fromstring(zf.read(metas[0]))
    if root.tag != "{%s}SubmitObjectsRequest" % LCM:
        fail("root is %s" % root.tag)
    rol = root.find(R + "RegistryObjectList")
    if rol is None:
        fail("no RegistryObjectList")
        return summary
    ids = []
    packages, docs, assocs, node_class = [], [], [], []
    for el in rol:
        name = local(el.tag)
        if name == "RegistryPackage":
            check_registry_object(el, ids)
            packages.append(el)
        elif name == "ExtrinsicObject":
            check_registry_object(el, ids)
            for a in ("mimeType", "objectType"):
                if not el.get(a):
                    fail("ExtrinsicObject without " + a)
            docs.append(el)
        elif name == "Association":
            ids.append(el.get("id"))
            assocs.append(el)
        elif name == "Classification":
            ids.append(el.get("id"))
            node_class.append(el)
        else:
            fail("unexpected " + name)
    if len(ids) != len(set(ids)):
        fail("duplicate registry object ids")
    if len(packages) != 1:
        fail("expected one submission set")
        return summary
    ss = packages[0]
    if not any(c.get("classificationNode") == SS_NODE and c.get("classifiedObject") == ss.get("id") for c in node_class):
        fail("the RegistryPackage is not classified as a submission set")
    ss_slots = slots(ss)
    if "submissionTime" not in ss_slots:
        fail("submission set without submissionTime")
    for scheme in (SS_PATIENT_ID, SS_SOURCE_ID, SS_UNIQUE_ID):
        if not external(ss, scheme):
            fail("submission set lacks " + scheme)
    summary["ss_patient_id"] = external(ss, SS_PATIENT_ID)
    summary["intended_recipients"] = ss_slots.get("intendedRecipient", [])
    doc_ids = {d.get("id") for d in docs}
    members = {a.get("targetObject") for a in assocs
               if a.get("associationType") == "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
               and a.get("sourceObject") == ss.get("id")}
    if members != doc_ids:
        fail("HasMember associations do not cover the documents")
    out_docs = []
    for d in docs:
        s = slots(d)
        for required in ("creationTime", "hash", "size", "languageCode", "sourcePatientId", "URI"):
            if required not in s:
                fail("document %s lacks slot %s" % (d.get("id"), required))
        for scheme in (CLASS, TYPE, FORMAT):
            if len(classifications(d, scheme)) != 1:
                fail("document %s: one classification %s expected" % (d.get("id"), scheme))
        if not classifications(d, CONF):
            fail("document %s: no confidentialityCode" % d.get("id"))
        uri = s["URI"][0]
        content = zf.read(upper[(meta_dir + "/" + uri).upper()])
        sha1 = hashlib.sha1(content).hexdigest()
        if sha1 != s["hash"][0].lower():
            fail("hash mismatch for " + uri)
        if str(len(content)) != s["size"][0]:
            fail("size mismatch for " + uri)
        type_code = classifications(d, TYPE)[0].get("nodeRepresentation")
        out_docs.append({
            "uri": uri,
            "sha1": sha1,
            "size": len(content),
            "type_code": type_code,
            "patient_id": external(d, DOC_PATIENT_ID),
            "unique_id": external(d, DOC_UNIQUE_ID),
            "source_patient_info": s.get("sourcePatientInfo", []),
            "cda_code_matches": ('code="%s"' % type_code).encode() in content,
        })
    summary["documents"] = out_docs
    return summary


if __name__ == "__main__":
    result = main(sys.argv[1])
    result["errors"] = errors
    print(json.dumps(result, ensure_ascii=False, indent=1, sort_keys=True))
    sys.exit(1 if errors else 0)
