/**
 * The only module that imports vtk.js: the reformat views' renderer (the acquired view draws on a 2D
 * canvas, canvas-slice-view.ts, and says why). It draws one 2D slice (vtkImageMapper + vtkImageSlice,
 * parallel projection) into a canvas inside the host element; no vtk.js interactor is created, the
 * viewer handles pointer and keys itself. The factory's `dispose()` deletes every vtk.js object it
 * made (STYLE.md habit 5); components call it on destroy.
 *
 * Camera: looks along +z with view-up -y, so row 0 of the delivered slice is at the top and
 * column 0 at the left, exactly as `viewer.slices` delivers them (see slice-geometry.ts).
 */
import '@kitware/vtk.js/Rendering/OpenGL/Camera';
import '@kitware/vtk.js/Rendering/OpenGL/Renderer';
import '@kitware/vtk.js/Rendering/OpenGL/ImageMapper';
import '@kitware/vtk.js/Rendering/OpenGL/ImageSlice';
import vtkOpenGLRenderWindow from '@kitware/vtk.js/Rendering/OpenGL/RenderWindow';
import vtkRenderWindow from '@kitware/vtk.js/Rendering/Core/RenderWindow';
import vtkRenderer from '@kitware/vtk.js/Rendering/Core/Renderer';
import vtkImageMapper from '@kitware/vtk.js/Rendering/Core/ImageMapper';
import vtkImageSlice from '@kitware/vtk.js/Rendering/Core/ImageSlice';
import vtkImageData from '@kitware/vtk.js/Common/DataModel/ImageData';
import vtkDataArray from '@kitware/vtk.js/Common/Core/DataArray';
import { cameraFor, FIT, type SliceLayout, type ViewTransform } from './slice-geometry';
import type { SliceView } from './slice-view';
import { DEFAULT_PRESET, type WindowLevel } from './window-level';

const INT16_RANGE = { min: -32768, max: 32767 };

/** vtk.js' WebGL2 context options (vtkOpenGLRenderWindow.get3DContext's defaults), without multisampling. */
const CONTEXT_OPTIONS: WebGLContextAttributes = { preserveDrawingBuffer: false, depth: true, alpha: true, powerPreference: 'high-performance', antialias: false };

function timed(name: string, f: () => void): void {
  const t = performance.now();
  f();
  try {
    performance.measure(`ctssl-vtk:${name}`, { start: t, end: performance.now() });
  } catch {
    // no User Timing
  }
}

export function createSliceView(host: HTMLElement): SliceView {
  const renderWindow = vtkRenderWindow.newInstance();
  const renderer = vtkRenderer.newInstance({ background: [0, 0, 0] });
  renderWindow.addRenderer(renderer);
  const glWindow = vtkOpenGLRenderWindow.newInstance();
  renderWindow.addView(glWindow);
  glWindow.setContainer(host);
  // A model field without a typed setter in vtk.js' .d.ts; the default is 'pointer'.
  (glWindow as unknown as { setCursor(c: string): boolean }).setCursor('crosshair');

  const mapper = vtkImageMapper.newInstance();
  const actor = vtkImageSlice.newInstance();
  actor.setMapper(mapper);
  const property = actor.getProperty();
  property.setInterpolationTypeToNearest();

  let image: ReturnType<typeof vtkImageData.newInstance> | null = null;
  let scalars: ReturnType<typeof vtkDataArray.newInstance> | null = null;
  let pixels: Int16Array | null = null;
  let layout: SliceLayout | null = null;
  let padding = INT16_RANGE.min;
  let transform: ViewTransform = FIT;
  let width = 1;
  let height = 1;
  let disposed = false;
  let window_: WindowLevel = DEFAULT_PRESET;

  const camera = renderer.getActiveCamera();
  camera.setParallelProjection(true);

  const applyWindow = () => {
    property.setColorWindow(window_.width);
    property.setColorLevel(window_.level);
  };
  applyWindow();

  const applyCamera = () => {
    if (!layout) return;
    const cam = cameraFor(layout, width, height, transform);
    const [fx, fy] = cam.focal;
    camera.setFocalPoint(fx, fy, 0);
    camera.setPosition(fx, fy, -1000);
    camera.setViewUp(0, -1, 0);
    camera.setParallelScale(cam.parallelScale);
    camera.setClippingRange(1, 2000);
  };

  const dropImage = () => {
    if (image) {
      renderer.removeViewProp(actor);
      mapper.setInputData(null as unknown as ReturnType<typeof vtkImageData.newInstance>);
      image.delete();
      scalars?.delete();
    }
    image = null;
    scalars = null;
    pixels = null;
  };

  /**
   * The canvas' context, made with vtk.js' own options but without multisampling before vtk.js asks
   * for one (vtk.js asks for none, so WebGL's default applies): on SwiftShader, in a bare page,
   * creating it took 136-230 ms with multisampling against 43-73 ms without, and a slice drawn as one
   * axis-aligned textured quad has no edges to smooth. vtk.js' initialize() then gets this same
   * context from the canvas.
   */
  let contextMade = false;
  const makeContext = () => {
    if (contextMade) return;
    contextMade = true;
    glWindow.getCanvas()?.getContext('webgl2', { ...CONTEXT_OPTIONS });
  };
  /** The first render compiles the shaders (a long task on software WebGL): measured as ctssl-vtk:first-render. */
  let rendered = false;

  const view: SliceView = {
    setLayout(l, paddingValue) {
      dropImage();
      layout = { ...l };
      padding = paddingValue;
      pixels = new Int16Array(l.columns * l.rows).fill(padding);
      scalars = vtkDataArray.newInstance({ name: 'HU', numberOfComponents: 1, values: pixels });
      scalars.setRange(INT16_RANGE, 0);
      image = vtkImageData.newInstance();
      image.setDimensions(l.columns, l.rows, 1);
      image.setSpacing([l.sx, l.sy, 1]);
      image.setOrigin([0, 0, 0]);
      image.getPointData().setScalars(scalars);
      mapper.setInputData(image);
      mapper.setKSlice(0);
      renderer.addViewProp(actor);
      transform = FIT;
      applyCamera();
    },
    showSlice(hu) {
      if (!pixels || !scalars || !image) return;
      if (hu) {
        if (hu.length !== pixels.length) throw new Error(`slice has ${hu.length} voxels, expected ${pixels.length}`);
        pixels.set(hu);
      } else {
        pixels.fill(padding);
      }
      // dataChange() drops vtk's cached range; set the full int16 range back so that the texture
      // scale is the same for every slice (and not recomputed on each one).
      scalars.dataChange();
      scalars.setRange(INT16_RANGE, 0);
      image.modified();
    },
    setWindow(w) {
      window_ = w;
      applyWindow();
    },
    setTransform(t) {
      transform = t;
      applyCamera();
    },
    setInterpolation(mode) {
      if (mode === 'linear') property.setInterpolationTypeToLinear();
      else property.setInterpolationTypeToNearest();
    },
    resize() {
      const r = host.getBoundingClientRect();
      width = Math.max(1, r.width);
      height = Math.max(1, r.height);
      const dpr = window.devicePixelRatio || 1;
      glWindow.setSize(Math.max(1, Math.floor(width * dpr)), Math.max(1, Math.floor(height * dpr)));
      applyCamera();
    },
    render() {
      if (disposed) return;
      makeContext();
      if (rendered) {
        renderWindow.render();
        return;
      }
      rendered = true;
      timed('first-render', () => renderWindow.render());
    },
    size() {
      return { width, height };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      dropImage();
      actor.delete();
      mapper.delete();
      renderer.delete();
      glWindow.setContainer(null);
      renderWindow.removeView(glWindow);
      glWindow.delete();
      renderWindow.delete();
    },
  };
  view.resize();
  return view;
}
