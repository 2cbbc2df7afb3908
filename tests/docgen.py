"""Small generated PDFs for the ingestion tests: good documents, and each kind of bad input."""

from __future__ import annotations

from pathlib import Path

from render_demo import DocSpec, Heading, PageBreak, Paragraph, Table, render_pdf

# Distinct vocabularies so that the HashEmbedder (a bag of hashed words) ranks each document first
# for a query made of its own topic words.
TOPICS = {
    "warfarin": "warfarin anticoagulant INR bleeding vitamin K",
    "metformin": "metformin lactic acidosis renal eGFR glucose",
    "amoxicillin": "amoxicillin penicillin rash allergy infection",
    "malaria": "malaria artemisinin parasite mosquito fever",
    "asthma": "asthma inhaler bronchospasm wheeze salbutamol",
    "gout": "gout urate allopurinol colchicine flare",
}


def guide(path: Path, topic: str, title: str | None = None, extra: str = "", pages: int = 2) -> Path:
    """A small guideline about `topic` (a TOPICS key): numbered sections over `pages` pages, one table.

    `extra` is a sentence added to section 2, so that two editions can differ in exactly one place.
    """
    words = TOPICS[topic]
    title = title or f"Guideline on {topic}"
    blocks: list = [Heading("1", "Scope")]
    blocks.append(Paragraph(f"This guideline covers {words} in adults. It applies to {topic} care in clinics."))
    blocks.append(Heading("2", "Treatment"))
    blocks.append(Paragraph(f"Treat {topic} promptly. Review {words} after three days. {extra}".strip()))
    blocks.append(Table(f"Table 1. {topic.capitalize()} doses", ["Group", "Dose"],
                        [["Adults", f"{topic} 10 mg daily"], ["Elderly", f"{topic} 5 mg daily"]]))
    for n in range(2, pages + 1):
        blocks += [PageBreak(), Heading(str(n + 1), f"Follow up part {n}"),
                   Paragraph(f"Follow up of {words} on page {n}. Record the {topic} outcome.")]
    return render_pdf(path, DocSpec(title=title, blocks=blocks))


def encrypted(src: Path, dst: Path, password: str = "s3cret") -> Path:
    """A copy of `src` that needs a user password to open."""
    from pypdf import PdfWriter

    w = PdfWriter(clone_from=str(src))
    w.encrypt(user_password=password, owner_password=password + "-owner")
    with open(dst, "wb") as fh:
        w.write(fh)
    return dst


def scanned(dst: Path, tmp: Path) -> Path:
    """A one-page PDF whose only content is an image of text (no text layer)."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    png = tmp / f"{dst.stem}.png"
    img = Image.new("RGB", (600, 800), "white")
    ImageDraw.Draw(img).text((40, 40), "Scanned page: give 5 mg daily", fill="black")
    img.save(png)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(png), x=10, y=10, w=180)
    pdf.output(str(dst))
    return dst


def truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """The first `keep` share of `src`'s bytes (as after an interrupted download)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


__all__ = ["TOPICS", "DocSpec", "Heading", "PageBreak", "Paragraph", "Table", "encrypted", "guide",
           "render_pdf", "scanned", "truncated"]
