//! One decoder layer on the GPU and the launch of each kernel it uses.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::device::CudaDevice;
use super::error::{Result, driver};
use super::forward::{grid, u32_of};
use super::model::{CudaModel, DeviceWeight};
use super::pool::DevicePagePool;

use super::forward::{LayerMeta, Scratch};

impl CudaModel {
    /// One decoder layer over all rows: the CPU's `layer`, kernel by kernel.
    pub(crate) fn run_layer(
        &self,
        dev: &CudaDevice,
        pool: &mut DevicePagePool,
        block_tokens: usize,
        layer: usize,
        meta: &LayerMeta<'_>,
        io: &mut Scratch,
    ) -> Result<()> {
        let c = &self.config;
        let w = &self.layers[layer];
        let rows = meta.rows;
        self.launch_rms_norm(dev, &io.x, &w.attn_norm, &mut io.h, rows)?;
        let (q_w, kv_w) = (c.q_dim(), c.kv_dim());
        for (t, out, width) in [
            (0, &mut io.q, q_w),
            (1, &mut io.k, kv_w),
            (2, &mut io.v, kv_w),
        ] {
            self.launch_gemm(dev, &io.h, &w.attn[t], out, rows, width, c.hidden, false)?;
            self.launch_lora(dev, pool, meta, layer, t, &io.h, &mut io.down, out)?;
        }
        self.launch_rope(dev, &mut io.q, meta, c.heads)?;
        self.launch_rope(dev, &mut io.k, meta, c.kv_heads)?;
        self.launch_write_kv(dev, pool, block_tokens, layer, meta, &io.k, &io.v)?;
        self.launch_attention(dev, pool, block_tokens, layer, meta, &io.q, &mut io.attn)?;
        self.launch_gemm(
            dev, &io.attn, &w.attn[3], &mut io.x, rows, c.hidden, q_w, true,
        )?;
        self.launch_lora(dev, pool, meta, layer, 3, &io.attn, &mut io.down, &mut io.x)?;
        self.launch_rms_norm(dev, &io.x, &w.ffn_norm, &mut io.h, rows)?;
        self.launch_gemm(
            dev,
            &io.h,
            &w.gate,
            &mut io.gate,
            rows,
            c.ffn,
            c.hidden,
            false,
        )?;
        self.launch_gemm(dev, &io.h, &w.up, &mut io.up, rows, c.ffn, c.hidden, false)?;
        self.launch_swiglu(dev, &mut io.gate, &io.up)?;
        self.launch_gemm(
            dev, &io.gate, &w.down, &mut io.x, rows, c.hidden, c.ffn, true,
        )
    }

    /// `out (+)= a · b`, `a` of `m × k`, `b` of `k × n`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn launch_gemm(
        &self,
        dev: &CudaDevice,
        a: &CudaSlice<f32>,
        b: &DeviceWeight,
        out: &mut CudaSlice<f32>,
        m: usize,
        n: usize,
        k: usize,
        accumulate: bool,
    ) -> Result<()> {
        let (mu, nu, ku, acc) = (u32_of(m)?, u32_of(n)?, u32_of(k)?, i32::from(accumulate));
        let name = match b {
            DeviceWeight::F32(_) => "gemm",
            DeviceWeight::Bf16(_) => "gemm_bf16w",
        };
        let mut l = dev.compute.launch_builder(self.kernels.get(name)?);
        l.arg(a);
        match b {
            DeviceWeight::F32(w) => l.arg(w),
            DeviceWeight::Bf16(w) => l.arg(w),
        };
        l.arg(out).arg(&mu).arg(&nu).arg(&ku).arg(&acc);
        // SAFETY: argument types and order match `gemm` / `gemm_bf16w` in gemm.cu (b as f32
        // or as bf16 bits); the buffers hold m×k, k×n and m×n values.
        unsafe { l.launch(grid(n.div_ceil(64), m.div_ceil(64), 256)?) }.map_err(driver(name))?;
        Ok(())
    }

    /// LoRA shrink then expand of projection `target` for every row with an adapter.
    #[allow(clippy::too_many_arguments)]
    fn launch_lora(
        &self,
        dev: &CudaDevice,
        pool: &DevicePagePool,
        meta: &LayerMeta<'_>,
        layer: usize,
        target: usize,
        input: &CudaSlice<f32>,
        down: &mut CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<()> {
        if meta.max_rank == 0 {
            return Ok(());
        }
        let (input_w, out_w) = self.config.attention_dims()[target];
        let layout = super::lora_pages::LoraStreamLayout::new(&self.config, 1);
        let (iw, ow, mr) = (u32_of(input_w)?, u32_of(out_w)?, u32_of(meta.max_rank)?);
        let slice = meta.slice_floats as u64;
        let a_off = layout.a_offset(layer, target) as u64;
        let b_off = layout.b_offset(layer, target) as u64;
        let pf = pool.page_floats() as u64;
        let m = meta.dev;
        let mut l = dev.compute.launch_builder(self.kernels.get("lora_shrink")?);
        l.arg(input)
            .arg(&pool.buf)
            .arg(&m.row_adapter)
            .arg(&m.ad_rank)
            .arg(&m.ad_scale);
        l.arg(&m.ad_table)
            .arg(&m.tables)
            .arg(&mut *down)
            .arg(&iw)
            .arg(&mr)
            .arg(&slice);
        l.arg(&a_off).arg(&pf);
        // SAFETY: matches `lora_shrink` in lora.cu; adapter pages were checked to lie in the
        // pool and every row's adapter index is below the adapter count.
        unsafe { l.launch(grid(meta.rows, meta.max_rank, 128)?) }.map_err(driver("lora_shrink"))?;
        let mut l = dev.compute.launch_builder(self.kernels.get("lora_expand")?);
        l.arg(&*down)
            .arg(&pool.buf)
            .arg(&m.row_adapter)
            .arg(&m.ad_rank)
            .arg(&m.ad_table);
        l.arg(&m.tables)
            .arg(out)
            .arg(&ow)
            .arg(&mr)
            .arg(&slice)
            .arg(&b_off)
            .arg(&pf);
        // SAFETY: matches `lora_expand` in lora.cu.
        unsafe { l.launch(grid(meta.rows, out_w.div_ceil(128), 128)?) }
            .map_err(driver("lora_expand"))?;
        Ok(())
    }

    /// `out = RMSNorm(x) · weight`, `rows` rows of the model width.
    pub(crate) fn launch_rms_norm(
        &self,
        dev: &CudaDevice,
        x: &CudaSlice<f32>,
        weight: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
        rows: usize,
    ) -> Result<()> {
        let (width, eps) = (u32_of(self.config.hidden)?, self.config.rms_eps);
        let mut l = dev.compute.launch_builder(self.kernels.get("rms_norm")?);
        l.arg(x).arg(weight).arg(out).arg(&width).arg(&eps);
        // SAFETY: matches `rms_norm` in layer.cu, which needs exactly 256 threads.
        unsafe { l.launch(grid(rows, 1, 256)?) }.map_err(driver("rms_norm"))?;
        Ok(())
    }

    /// `out[r] = table[idx[r]]`, rows of `width`.
    pub(crate) fn launch_gather_rows(
        &self,
        dev: &CudaDevice,
        table: &CudaSlice<f32>,
        idx: &CudaSlice<u32>,
        out: &mut CudaSlice<f32>,
        rows: usize,
        width: usize,
    ) -> Result<()> {
        let w = u32_of(width)?;
        let mut l = dev.compute.launch_builder(self.kernels.get("gather_rows")?);
        l.arg(table).arg(idx).arg(out).arg(&w);
        // SAFETY: matches `gather_rows` in layer.cu; indices were checked against the table.
        unsafe { l.launch(grid(rows, 1, 256)?) }.map_err(driver("gather_rows"))?;
        Ok(())
    }

    /// RoPE in place on `heads` heads per row.
    fn launch_rope(
        &self,
        dev: &CudaDevice,
        x: &mut CudaSlice<f32>,
        meta: &LayerMeta<'_>,
        heads: usize,
    ) -> Result<()> {
        let (h, hd, theta) = (
            u32_of(heads)?,
            u32_of(self.config.head_dim)?,
            self.config.rope_theta,
        );
        let mut l = dev.compute.launch_builder(self.kernels.get("rope")?);
        l.arg(x)
            .arg(&meta.dev.positions)
            .arg(&h)
            .arg(&hd)
            .arg(&theta);
        // SAFETY: matches `rope` in layer.cu.
        unsafe { l.launch(grid(meta.rows, 1, 128)?) }.map_err(driver("rope"))?;
        Ok(())
    }

    /// `gate = silu(gate) · up`.
    fn launch_swiglu(
        &self,
        dev: &CudaDevice,
        gate: &mut CudaSlice<f32>,
        up: &CudaSlice<f32>,
    ) -> Result<()> {
        let n = gate.len() as u64;
        let mut l = dev.compute.launch_builder(self.kernels.get("swiglu")?);
        l.arg(gate).arg(up).arg(&n);
        // SAFETY: matches `swiglu` in layer.cu; both buffers hold n floats.
        unsafe { l.launch(grid((n as usize).div_ceil(256), 1, 256)?) }.map_err(driver("swiglu"))?;
        Ok(())
    }

    /// Writes the rows' K and V of `layer` into their pages.
    #[allow(clippy::too_many_arguments)]
    fn launch_write_kv(
        &self,
        dev: &CudaDevice,
        pool: &mut DevicePagePool,
        block_tokens: usize,
        layer: usize,
        meta: &LayerMeta<'_>,
        k: &CudaSlice<f32>,
        v: &CudaSlice<f32>,
    ) -> Result<()> {
        let (lu, bt, pf, kv) = (
            u32_of(layer)?,
            u32_of(block_tokens)?,
            pool.page_floats() as u64,
            u32_of(self.config.kv_dim())?,
        );
        let m = meta.dev;
        let mut l = dev.compute.launch_builder(self.kernels.get("write_kv")?);
        l.arg(k)
            .arg(v)
            .arg(&mut pool.buf)
            .arg(&m.positions)
            .arg(&m.table_start);
        l.arg(&m.tables).arg(&lu).arg(&bt).arg(&pf).arg(&kv);
        // SAFETY: matches `write_kv` in layer.cu; tables were checked to cover every position
        // with pages inside the pool.
        unsafe { l.launch(grid(meta.rows, 1, 128)?) }.map_err(driver("write_kv"))?;
        Ok(())
    }

    /// Paged attention of every row over its sequence's pages.
    #[allow(clippy::too_many_arguments)]
    fn launch_attention(
        &self,
        dev: &CudaDevice,
        pool: &DevicePagePool,
        block_tokens: usize,
        layer: usize,
        meta: &LayerMeta<'_>,
        q: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let c = &self.config;
        let (lu, bt, pf) = (
            u32_of(layer)?,
            u32_of(block_tokens)?,
            pool.page_floats() as u64,
        );
        let (h, kvh) = (u32_of(c.heads)?, u32_of(c.kv_heads)?);
        let m = meta.dev;
        let mut l = dev
            .compute
            .launch_builder(self.kernels.get("paged_attention")?);
        l.arg(q)
            .arg(&pool.buf)
            .arg(&m.positions)
            .arg(&m.table_start)
            .arg(&m.tables);
        l.arg(out).arg(&lu).arg(&bt).arg(&pf).arg(&h).arg(&kvh);
        // SAFETY: matches `paged_attention` in attention.cu, built for this head width.
        unsafe { l.launch(grid(meta.rows, c.heads, 128)?) }.map_err(driver("paged_attention"))?;
        Ok(())
    }

    /// Fills `buf` with `value`.
    pub(crate) fn launch_fill(
        &self,
        dev: &CudaDevice,
        buf: &mut CudaSlice<f32>,
        value: f32,
    ) -> Result<()> {
        let n = buf.len() as u64;
        let mut l = dev.compute.launch_builder(self.kernels.get("fill_f32")?);
        l.arg(buf).arg(&n).arg(&value);
        // SAFETY: matches `fill_f32` in copy.cu.
        unsafe { l.launch(grid((n as usize).div_ceil(256).min(4096), 1, 256)?) }
            .map_err(driver("fill_f32"))?;
        Ok(())
    }
}
