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


def grid_table(dst: Path, header: list[list[str]], rows: list[list[str]], per_page: int = 0,
               repeat_header: bool = True, title: str = "") -> Path:
    """An unruled, uncaptioned table (cells placed at fixed columns, as the malaria guideline prints its
    weight-band dosing tables) between lines of prose. With `per_page`, the rows after the first
    `per_page` go on a second page, under the header again when `repeat_header` (else the page opens
    with the rows). `title`: a line naming the table, printed above its header. Three lines of prose of
    its own stand above a header and below the last row, so that a repeated header is not taken for a
    running header.

    Example: header [['Body weight', 'Dose (mg)'], ['(kg)', 'daily']] prints a two-row header.
    """
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", "", 10)
    columns = [72 + 120 * k for k in range(max(len(r) for r in header + rows))]

    def line(y: float, cells: list[str], right: bool = False) -> float:
        start = len(columns) - len(cells) if right else 0  # a wrapped last header cell
        for x, cell in zip(columns[start:], cells, strict=False):
            pdf.text(x, y, cell)
        return y + 14

    def page(n: int, body: list[list[str]], head: bool, last: bool) -> None:
        pdf.add_page()
        y = 80.0
        for k in range(3 if head else 0):
            y = line(y, [f"Dosing page {n}, line {k + 1}: give the dose for the body weight."])
        y += 10
        if title and n == 1:
            y = line(y, [title])
        for h in header if head else []:
            y = line(y, h, right=len(h) < len(columns))
        for r in body:
            y = line(y + 4, r)
        for k in range(3 if last else 0):  # a table continued overleaf ends its page
            y = line(y + 10, [f"Review page {n}, note {k + 1}: check the patient after three days."])

    split = per_page or len(rows)
    page(1, rows[:split], True, not rows[split:])
    if rows[split:]:
        page(2, rows[split:], repeat_header, True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(dst))
    return dst


def encrypted(src: Path, dst: Path, password: str = "s3cret") -> Path:
    """A copy of `src` that needs a user password to open."""
    from pypdf import PdfWriter

    w = PdfWriter(clone_from=str(src))
    w.encrypt(user_password=password, owner_password=password + "-owner")
    with open(dst, "wb") as fh:
        w.write(fh)
    return dst


def scanned(dst: Path, tmp: Path, lines: tuple[str, ...] = ("Scanned page: give 5 mg daily",),
            size: int = 48) -> Path:
    """A one-page A4 PDF whose only content is an image of `lines` (no text layer), drawn at 150 dpi in
    a `size`-pixel font (about 23 points at 48: tesseract reads it reliably)."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    png = tmp / f"{dst.stem}.png"
    img = Image.new("RGB", (1240, 1754), "white")
    draw, font = ImageDraw.Draw(img), ImageFont.load_default(size=size)
    for i, line in enumerate(lines):
        draw.text((120, 160 + i * int(size * 1.6)), line, fill="black", font=font)
    img.save(png)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(png), x=0, y=0, w=210)
    dst.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(dst))
    return dst


def mixed(dst: Path, tmp: Path, topic: str, scans: dict[int, tuple[str, ...]], pages: int = 2) -> Path:
    """A guideline about `topic`: `pages` text pages rendered by `guide`, with the scanned images of
    `scans`' lines placed so that they are those PDF pages (1-based) of the finished file.

    Example: scans={2: ("Give quinine",)} -> page 1 text, page 2 an image of 'Give quinine', page 3 text
    """
    from pypdf import PdfReader, PdfWriter

    text = PdfReader(guide(tmp / f"{dst.stem}-text.pdf", topic, pages=pages))
    writer, left = PdfWriter(), iter(text.pages)
    for n in range(1, len(text.pages) + len(scans) + 1):
        if n in scans:
            writer.add_page(PdfReader(scanned(tmp / f"{dst.stem}-scan{n}.pdf", tmp, scans[n])).pages[0])
        else:
            writer.add_page(next(left))
    with open(dst, "wb") as fh:
        writer.write(fh)
    return dst


def truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """The first `keep` share of `src`'s bytes (as after an interrupted download)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def deep_page_tree(dst: Path, depth: int = 5000, text: str = "Warfarin 5 mg daily for adults.") -> Path:
    """A one-page PDF whose page sits under `depth` nested /Pages nodes (a parser's recursion breaker)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    page, content, font = depth + 2, depth + 3, depth + 4
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    for n in range(2, depth + 2):
        parent = f" /Parent {n - 1} 0 R" if n > 2 else ""
        objs[n] = f"<< /Type /Pages /Kids [{n + 1} 0 R] /Count 1{parent} >>".encode()
    objs[page] = (f"<< /Type /Page /Parent {depth + 1} 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
                  f"/Resources << /Font << /F1 {font} 0 R >> >> >>").encode()
    objs[content] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    objs[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for n in sorted(objs):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, objs[n])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(out))
    return dst


__all__ = ["TOPICS", "DocSpec", "Heading", "PageBreak", "Paragraph", "Table", "deep_page_tree", "encrypted",
           "grid_table", "guide", "mixed", "render_pdf", "scanned", "truncated"]
